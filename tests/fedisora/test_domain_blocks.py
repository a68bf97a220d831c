"""Domain blocks as a service: names, the policy's subdomain matching, CSV in Mastodon's format
(round trip, malformed lines both ways), the audit log, cancelled deliveries and the purge."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from factories import local_account, remote_account

from fedisora.config import Settings, load_settings
from fedisora.errors import Invalid
from fedisora.ids import new_id
from fedisora.models import Account, AuditEntry, Clip, Delivery, DomainBlock, utcnow
from fedisora.services import domain_blocks as service
from fedisora.services import posts
from fedisora.services.audit import CLI


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "FEDISORA_DOMAIN": "fedisora.test",
            "FEDISORA_DATA_DIR": str(tmp_path),
            "FEDISORA_SECRET_KEY": "s" * 40,
        }
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("https://example.com:8443/users/x?y#z", "example.com"),
        ("user@Example.com", "example.com"),
        ("example.com.", "example.com"),
        ("*.example.com", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("  sub.example.org  ", "sub.example.org"),
    ],
)
def test_domains_are_normalised(raw: str, expected: str) -> None:
    assert service.normalize_domain(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "localhost",
        "exa mple.com",
        "-bad.example",
        "a..b",
        "https://",
        "x" * 300 + ".com",
    ],
)
def test_invalid_domains_are_refused(raw: str) -> None:
    with pytest.raises(Invalid):
        service.normalize_domain(raw)


async def test_own_domain_and_its_parents_are_refused(db: str, settings: Settings) -> None:
    for raw in ("fedisora.test", "https://FEDISORA.test/", "FEDISORA.TEST:443"):
        with pytest.raises(Invalid, match="own domain"):
            await service.create_block(CLI, raw, settings, severity="suspend")
    sub = load_settings({**_env(settings), "FEDISORA_DOMAIN": "social.example.org"})
    with pytest.raises(Invalid, match="own domain"):
        await service.create_block(CLI, "example.org", sub)
    with pytest.raises(Invalid, match="not a valid domain"):
        await service.create_block(CLI, "not a domain", settings)
    with pytest.raises(Invalid, match="severity"):
        await service.create_block(CLI, "example.com", settings, severity="ban")
    assert await DomainBlock.all().count() == 0
    assert await AuditEntry.all().count() == 0


def _env(settings: Settings) -> dict[str, str]:
    return {
        "FEDISORA_DATA_DIR": str(settings.data_dir),
        "FEDISORA_SECRET_KEY": "s" * 40,
    }


async def test_subdomains_match_and_the_most_specific_block_applies(
    db: str, settings: Settings
) -> None:
    await service.create_block(CLI, "example.com", settings, severity="suspend")
    await service.create_block(
        CLI, "calm.example.com", settings, severity="noop", reject_media=True
    )
    assert await service.is_blocked("example.com")
    assert await service.is_blocked("a.b.example.com:8443")
    assert not await service.is_blocked("notexample.com")
    assert not await service.is_blocked("example.com.evil")
    calm = await service.policy("x.calm.example.com")
    assert (calm.domain, calm.suspended, calm.reject_media) == ("calm.example.com", False, True)
    assert not await service.is_blocked("other.example")


async def test_limited_federation_only_allowed_domains(db: str, settings: Settings) -> None:
    limited = load_settings({**_env(settings), "FEDISORA_LIMITED_FEDERATION": "1"})
    await service.create_allow(CLI, "friends.example", limited)
    assert await service.is_blocked("stranger.example", limited)
    assert not await service.is_blocked("a.friends.example", limited)
    assert not await service.is_blocked("stranger.example", settings)  # mode off


async def test_csv_round_trip(db: str, settings: Settings) -> None:
    await service.create_block(
        CLI,
        "a.example",
        settings,
        severity="suspend",
        reject_media=True,
        public_comment="spam, lots",
    )
    await service.create_block(CLI, "b.example", settings, severity="silence", obfuscate=True)
    await service.create_block(CLI, "c.example", settings, severity="noop", reject_reports=True)
    exported = service.export_csv(await DomainBlock.all().order_by("domain"))
    assert exported.splitlines()[0] == (
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"
    )
    assert 'a.example,suspend,true,false,"spam, lots",false' in exported.splitlines()

    def fields(rows: list[DomainBlock]) -> list[tuple[object, ...]]:
        return [
            (b.domain, b.severity, b.reject_media, b.reject_reports, b.public_comment, b.obfuscate)
            for b in rows
        ]

    before = fields(await DomainBlock.all().order_by("domain"))
    await DomainBlock.all().delete()
    result = await service.import_csv(CLI, exported, settings, all_or_nothing=True)
    assert result.applied and result.errors == []
    assert sorted(result.created) == ["a.example", "b.example", "c.example"]
    assert fields(await DomainBlock.all().order_by("domain")) == before
    # Imported again: nothing changes, nothing is logged twice.
    logged = await AuditEntry.all().count()
    again = await service.import_csv(CLI, exported, settings, all_or_nothing=True)
    assert (again.created, again.updated) == ([], [])
    assert await AuditEntry.all().count() == logged


MALFORMED = "\n".join(
    [
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate",
        "good.example,suspend,false,false,,false",
        "bad domain,silence,false,false,,false",
        "fine.example,silence,true,false,,false",
        "fedisora.test,suspend,false,false,,false",
        "x.example,destroy,false,false,,false",
        "y.example,silence,maybe,false,,false",
        "z.example,silence,false,false,,false,extra",
        "good.example,silence,false,false,,false",
    ]
)


async def test_malformed_lines_all_or_nothing(db: str, settings: Settings) -> None:
    result = await service.import_csv(CLI, MALFORMED, settings, all_or_nothing=True)
    assert not result.applied
    assert [n for n, _ in result.errors] == [3, 5, 6, 7, 8, 9]
    messages = dict(result.errors)
    assert "not a valid domain" in messages[3]
    assert "own domain" in messages[5]
    assert "severity" in messages[6]
    assert "reject_media" in messages[7]
    assert "line 2" in messages[9]
    assert await DomainBlock.all().count() == 0
    assert await AuditEntry.all().count() == 0


async def test_malformed_lines_import_the_rest(db: str, settings: Settings) -> None:
    result = await service.import_csv(CLI, MALFORMED, settings, all_or_nothing=False)
    assert result.applied
    assert [n for n, _ in result.errors] == [3, 5, 6, 7, 8, 9]
    assert sorted(str(d) for d in await DomainBlock.all().values_list("domain", flat=True)) == [
        "fine.example",
        "good.example",
    ]
    # A list of bare domains (as some blocklists are) is read as suspensions.
    bare = await service.import_csv(
        CLI, "one.example\ntwo.example\n", settings, all_or_nothing=True
    )
    assert bare.created == ["one.example", "two.example"]
    assert (await DomainBlock.get(domain="two.example")).severity == "suspend"


async def test_every_change_is_audited(db: str, settings: Settings) -> None:
    boss = await local_account("boss", admin=True)
    block = await service.create_block(boss, "Spam.Example", settings, severity="silence")
    await service.update_block(boss, block, severity="suspend", reject_media=True)
    await service.delete_block(boss, block)
    allow = await service.create_allow(boss, "friends.example", settings)
    await service.delete_allow(boss, allow)
    rows = await AuditEntry.all().order_by("id")
    assert [(r.action, r.target_type, r.target_id, r.actor_id) for r in rows] == [
        ("domain_block.create", "domain", "spam.example", boss.pk),
        ("domain_block.update", "domain", "spam.example", boss.pk),
        ("domain_block.delete", "domain", "spam.example", boss.pk),
        ("domain_allow.create", "domain", "friends.example", boss.pk),
        ("domain_allow.delete", "domain", "friends.example", boss.pk),
    ]
    assert rows[1].detail == "severity=suspend, reject_media"


async def test_suspension_cancels_pending_deliveries(db: str, settings: Settings) -> None:
    alice = await local_account("alice")

    async def delivery(host: str) -> Delivery:
        now = utcnow()
        return await Delivery.create(
            sender=alice,
            inbox_url=f"https://{host}/inbox",
            host=host,
            activity_id=f"https://fedisora.test/a/{host}",
            payload={},
            state="pending",
            next_attempt_at=now,
        )

    blocked = [await delivery(h) for h in ("evil.example", "a.evil.example", "evil.example:8443")]
    kept = await delivery("good.example")
    await service.create_block(CLI, "evil.example", settings, severity="silence")
    assert await Delivery.filter(state="pending").count() == 4  # a silence sends on
    block = await DomainBlock.get(domain="evil.example")
    await service.update_block(CLI, block, severity="suspend")
    for row in blocked:
        fresh = await Delivery.get(pk=row.pk)
        assert fresh.state == "failed" and "suspended" in fresh.last_error
    assert (await Delivery.get(pk=kept.pk)).state == "pending"
    # No new deliveries are written for it.
    from fedisora.federation.delivery import enqueue

    evil = await remote_account("eve", "evil.example")
    good = await remote_account("gus", "good.example")
    assert await enqueue(alice, {"id": "https://fedisora.test/x"}, [evil, good]) == 1
    hosts = await Delivery.filter(activity_id="https://fedisora.test/x").values_list("host")
    assert [str(h) for (h,) in hosts] == ["good.example"]


async def test_purge_suspends_accounts_and_removes_clips_in_batches(
    db: str, settings: Settings
) -> None:
    accounts = [await remote_account(f"u{i}", "evil.example") for i in range(3)]
    sub = await remote_account("s", "media.evil.example")
    other = await remote_account("o", "good.example")
    clips = [await remote_clip(a) for a in [*accounts, sub, other]]
    await service.create_block(CLI, "evil.example", settings, severity="suspend")
    progress: dict[str, object] = {}
    counts, more = await service.purge_step(progress, limit=2)
    assert more and counts == {"accounts": 2, "clips": 2}
    while more:
        counts, more = await service.purge_step(progress, limit=2)
    suspended = await Account.filter(suspended_at__not_isnull=True).values_list("id", flat=True)
    assert sorted(suspended) == sorted(a.pk for a in [*accounts, sub])
    deleted = await Clip.filter(deleted_at__not_isnull=True).values_list("account_id", flat=True)
    assert sorted(deleted) == sorted(a.pk for a in [*accounts, sub])
    assert (await Clip.get(pk=clips[-1].pk)).deleted_at is None


async def remote_clip(account: Account, visibility: str = "public") -> Clip:
    """A remote clip as federation stores it."""
    return await posts.store_clip(
        Clip(
            id=new_id(),
            account=account,
            uri=f"{account.uri}/clips/{new_id()}",
            url=f"{account.uri}/clips/1",
            caption="remote",
            content="<p>remote</p>",
            local=False,
            visibility=visibility,
        ),
        account,
    )


def test_obfuscation_is_mastodons() -> None:
    assert service.obfuscated("example.com") == "exa****.*om"  # DomainBlock#public_domain
    assert service.obfuscated("a.b") == "a.*"


async def test_public_list(db: str, settings: Settings) -> None:
    await service.create_block(
        CLI, "hidden.example", settings, severity="suspend", obfuscate=True, public_comment="spam"
    )
    await service.create_block(CLI, "open.example", settings, private_comment="secret")
    listed = await service.public_blocks()
    assert listed == [
        {
            "domain": service.obfuscated("hidden.example"),
            "digest": hashlib.sha256(b"hidden.example").hexdigest(),
            "severity": "suspend",
            "comment": "spam",
        },
        {
            "domain": "open.example",
            "digest": hashlib.sha256(b"open.example").hexdigest(),
            "severity": "silence",
            "comment": None,
        },
    ]
    assert "*" in listed[0]["domain"] and listed[0]["domain"] != "hidden.example"
