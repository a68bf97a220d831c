"""Settings of a test instance that signs its renders: the provenance keys of a generated
instance CA written where the instance reads them (``<data>/provenance``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fedisora.config import Settings, load_settings
from render.provenance import InstanceCredentials


def signed_settings(tmp_path: Path, ca: InstanceCredentials, db: str, domain: str) -> Settings:
    prov = tmp_path / "data" / "provenance"
    prov.mkdir(parents=True)
    (prov / "root.pem").write_text(ca.root_pem)
    (prov / "chain.pem").write_text(ca.chain_pem)
    (prov / "key.pem").write_text(ca.key_pem)
    loaded = load_settings(
        {
            "FEDISORA_DOMAIN": domain,
            "FEDISORA_DATA_DIR": str(tmp_path / "data"),
            "FEDISORA_SECRET_KEY": "s" * 40,
            "FEDISORA_CONFIG": str(tmp_path / "none.env"),
        }
    )
    return replace(loaded, database_url=db)
