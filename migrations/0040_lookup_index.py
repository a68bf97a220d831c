# The lookup's index with 32-bit chunks (fedisora.services.fingerprints): a key is position << 32
# | chunk, a bigint, and every second sample is indexed. The rows are written again from the
# stored hashes (the chunking is copied here: a migration does not follow later code).
from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

_SAMPLE_BYTES = 3 * 32  # VARIANTS hashes of 32 bytes a sample
_EVERY = 2
_BATCH = 500


def _keys(hashes_hex: str) -> list[int]:
    try:
        raw = bytes.fromhex(hashes_hex)
    except ValueError:
        return []
    if not raw or len(raw) % _SAMPLE_BYTES:
        return []
    keys: set[int] = set()
    for start in range(0, len(raw), _SAMPLE_BYTES * _EVERY):
        sample = raw[start : start + _SAMPLE_BYTES]
        for h in range(0, _SAMPLE_BYTES, 32):
            for position in range(8):
                chunk = sample[h + 4 * position : h + 4 * position + 4]
                keys.add(position << 32 | int.from_bytes(chunk, "big"))
    return sorted(keys)


async def reindex(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    await client.execute_script("DELETE FROM fingerprint_chunks")
    insert = (
        "INSERT INTO fingerprint_chunks (key, fingerprint_id) VALUES ($1, $2)"
        if postgres
        else "INSERT INTO fingerprint_chunks (key, fingerprint_id) VALUES (?, ?)"
    )
    last = 0
    while True:
        select = (
            f"SELECT id, hashes FROM fingerprints WHERE state = 'done' AND id > {int(last)} "
            f"ORDER BY id LIMIT {_BATCH}"
        )
        _, rows = await client.execute_query(select)
        if not rows:
            break
        values = [[key, int(row["id"])] for row in rows for key in _keys(row["hashes"] or "")]
        if values:
            await client.execute_many(insert, values)
        last = int(rows[-1]["id"])


async def nothing(apps: Any, schema_editor: Any) -> None:
    """Going back leaves the rows to be written again by hand (the old 16-bit keys are gone)."""
    await schema_editor.client.execute_script("DELETE FROM fingerprint_chunks")


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0039_entity_versions")]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name="FingerprintChunk",
            options={
                "table": "fingerprint_chunks",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["key", "fingerprint_id"]),
                    Index(fields=["fingerprint_id"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "Multi-index hashing over indexed PDQ hashes: one row per (32-bit chunk at "
                    "its position,"
                ),
            },
        ),
        # The indexes go and come back around the new type (SQLite rebuilds the table to
        # change a column, without them) and the rows written again (built once, after).
        ops.RemoveIndex(model_name="FingerprintChunk", fields=["key", "fingerprint_id"]),
        ops.RemoveIndex(model_name="FingerprintChunk", fields=["fingerprint_id"]),
        ops.AlterField(
            model_name="FingerprintChunk",
            name="key",
            field=fields.BigIntField(),
        ),
        ops.RunPython(reindex, nothing),
        ops.AddIndex(model_name="FingerprintChunk", index=Index(fields=["key", "fingerprint_id"])),
        ops.AddIndex(model_name="FingerprintChunk", index=Index(fields=["fingerprint_id"])),
    ]
