"""Settings: embedded defaults, the env file, and fail-fast errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedisora.config import ConfigError, load_settings


def test_embedded_defaults(tmp_path: Path) -> None:
    s = load_settings({"FEDISORA_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite://{tmp_path}/fedisora.sqlite3"
    assert s.media_root == tmp_path / "media"
    assert s.redis_url is None and s.render_model == "tiny"
    assert s.insecure_http is False and s.base_url == "https://127.0.0.1:8000"
    assert s.max_clip_seconds == 10.0 and s.registrations == "open"


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "fedisora.env").write_text(
        "# comment\nFEDISORA_SECRET_KEY='" + "k" * 40 + "'\nFEDISORA_DOMAIN=file.example\n"
    )
    s = load_settings({"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_DOMAIN": "env.example"})
    assert s.secret_key == "k" * 40 and s.domain == "env.example"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FEDISORA_DOMAIN", "not a domain!", "FEDISORA_DOMAIN must be a host name"),
        ("FEDISORA_DATABASE_URL", "mysql://x/y", "FEDISORA_DATABASE_URL must start with"),
        ("FEDISORA_REDIS_URL", "http://x", "FEDISORA_REDIS_URL must start with"),
        ("FEDISORA_SECRET_KEY", "short", "FEDISORA_SECRET_KEY must be at least 32"),
        ("FEDISORA_INSECURE_HTTP", "maybe", "FEDISORA_INSECURE_HTTP must be 1/0"),
        ("FEDISORA_REGISTRATIONS", "sometimes", "FEDISORA_REGISTRATIONS must be one of"),
        ("FEDISORA_MAX_CLIP_SECONDS", "30", "FEDISORA_MAX_CLIP_SECONDS must be between"),
        ("FEDISORA_MAX_CLIP_SECONDS", "ten", "FEDISORA_MAX_CLIP_SECONDS must be a number"),
        ("FEDISORA_COLOUR", "blue", "unknown setting FEDISORA_COLOUR"),
        ("FEDISORA_SOURCE_URL", "git@host:x.git", "FEDISORA_SOURCE_URL must be an http"),
        # A byte cap under the largest activity (1 MiB) would refuse it on an empty budget.
        ("FEDISORA_INBOX_ACTOR_MAX_MB", "0", "FEDISORA_INBOX_ACTOR_MAX_MB must be between 1"),
        ("FEDISORA_INBOX_HOST_MAX_ITEMS", "-5", "FEDISORA_INBOX_HOST_MAX_ITEMS must be between"),
        ("FEDISORA_INBOX_DEDUPE_DAYS", "0", "FEDISORA_INBOX_DEDUPE_DAYS must be between 1"),
        ("FEDISORA_MEDIA_UNATTACHED_HOURS", "a day", "must be a whole number"),
        ("FEDISORA_SMTP_URL", "http://mail.example", "FEDISORA_SMTP_URL must be smtp://"),
        ("FEDISORA_SMTP_URL", "smtp://127.0.0.1:port", "FEDISORA_SMTP_URL has an invalid port"),
        ("FEDISORA_SMTP_URL", "smtp://127.0.0.1/x", "FEDISORA_SMTP_URL takes a host and port"),
        ("FEDISORA_SMTP_FROM", "nobody", "FEDISORA_SMTP_FROM must be an e-mail address"),
    ],
)
def test_invalid_settings_fail_fast_naming_the_setting(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"FEDISORA_DATA_DIR": str(tmp_path), name: value})


def test_the_test_suites_own_variables_are_not_settings(tmp_path: Path) -> None:
    """FEDISORA_TEST_* names the suite's services; a CLI run with the suite's environment
    (``fedisora init`` in a test) must not refuse them, while a typo stays refused."""
    env = {"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_TEST_REDIS": "redis://127.0.0.1/3"}
    assert load_settings(env).data_dir == tmp_path
    with pytest.raises(ConfigError, match="unknown setting FEDISORA_TESTS"):
        load_settings({"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_TESTS": "1"})


def test_insecure_http_and_postgres(tmp_path: Path) -> None:
    s = load_settings(
        {
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_INSECURE_HTTP": "1",
            "FEDISORA_DATABASE_URL": "postgres://u@127.0.0.1/db",
            "FEDISORA_REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert s.base_url.startswith("http://") and not s.uses_sqlite
    connection = s.tortoise_config()["connections"]["default"]
    assert connection["engine"] == "tortoise.backends.asyncpg"
    creds = connection["credentials"]
    assert (creds["host"], creds["user"], creds["database"]) == ("127.0.0.1", "u", "db")


def test_source_url_defaults_to_upstream_and_can_name_a_fork(tmp_path: Path) -> None:
    from fedisora.config import DEFAULT_SOURCE_URL

    base = {"FEDISORA_DATA_DIR": str(tmp_path)}
    assert load_settings(base).source_url == DEFAULT_SOURCE_URL
    assert load_settings({**base, "FEDISORA_SOURCE_URL": " "}).source_url == DEFAULT_SOURCE_URL
    fork = "https://code.example/me/fedisora-fork"
    assert load_settings({**base, "FEDISORA_SOURCE_URL": fork}).source_url == fork


def test_mail_settings(tmp_path: Path) -> None:
    base = {"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_DOMAIN": "clips.example:8443"}
    plain = load_settings(base)
    assert plain.smtp_url == "" and plain.mail_from == "noreply@clips.example"
    url = "smtps://me:secret@127.0.0.1:2465"
    mail = load_settings({**base, "FEDISORA_SMTP_URL": url, "FEDISORA_SMTP_FROM": "hi@x.org"})
    assert mail.smtp_url == url and mail.mail_from == "hi@x.org"


def test_storage_settings(tmp_path: Path) -> None:
    s = load_settings({"FEDISORA_DATA_DIR": str(tmp_path)})
    assert (s.inbox_actor_max_items, s.inbox_actor_max_mb) == (10000, 64)
    assert (s.inbox_host_max_items, s.inbox_host_max_mb) == (50000, 256)
    assert (s.retain_inbox_ignored_minutes, s.retain_inbox_processed_minutes) == (10, 60)
    assert (s.retain_failed_days, s.inbox_dedupe_days, s.retain_work_days) == (3, 7, 7)
    assert (s.retain_delivered_hours, s.media_unattached_hours) == (24, 24)
    s = load_settings(
        {"FEDISORA_DATA_DIR": str(tmp_path), "FEDISORA_RETAIN_INBOX_IGNORED_MINUTES": "0"}
    )
    assert s.retain_inbox_ignored_minutes == 0  # dropped at the next run


def test_every_setting_is_in_the_readme() -> None:
    from fedisora.config import _PARSERS

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [n for n in _PARSERS if f"`FEDISORA_{n}`" not in readme]
    assert missing == []
