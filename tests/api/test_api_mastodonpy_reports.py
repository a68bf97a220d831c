"""An unmodified Mastodon.py files a report and an admin handles it, against a real running
instance (``fedisora init`` + ``serve``): ``report``, ``admin_reports``, ``admin_report``,
``admin_report_assign``, ``admin_report_resolve`` and ``admin_report_reopen``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mastodon
import pytest
from instance import Instance, finished_render, running_instance

PASSWORD = "a long password 1"
ADMIN_SCOPES = ["read", "write", "admin:read:reports", "admin:write:reports"]


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with running_instance(tmp_path_factory.mktemp("mastodonpy-reports")) as inst:
        yield inst


def test_mastodonpy_reports(instance: Instance, tmp_path: Path) -> None:
    def client(**kwargs: object) -> mastodon.Mastodon:
        return mastodon.Mastodon(api_base_url=instance.url, request_timeout=30, **kwargs)

    cid, secret = mastodon.Mastodon.create_app(
        "reports", api_base_url=instance.url, scopes=[*ADMIN_SCOPES, "follow", "push"]
    )
    users = {}
    for name in ("alice", "bob"):
        signup = client(client_id=cid, client_secret=secret)
        token = signup.create_account(name, PASSWORD, f"{name}@example.com", agreement=True)
        users[name] = client(access_token=token)
    alice, bob = users["alice"], users["bob"]
    clip = bob.status_post("buy now", media_ids=[finished_render(instance, "bob")])
    bob_account = alice.account_lookup("bob")

    report = alice.report(bob_account, [clip], comment="spam", category="spam")
    assert report.category == "spam" and report.comment == "spam"
    assert [str(i) for i in report.status_ids] == [str(clip.id)]
    assert report.target_account.acct == "bob" and report.action_taken is False

    admin = client(client_id=cid, client_secret=secret)
    admin.log_in("admin", instance.admin_password, scopes=ADMIN_SCOPES, allow_http=True)
    listed = admin.admin_reports()
    assert [r.id for r in listed] == [report.id]
    assert listed[0].account.username == "alice" and listed[0].statuses[0].id == clip.id
    assigned = admin.admin_report_assign(report.id)
    assert assigned.assigned_account.username == "admin"
    resolved = admin.admin_report_resolve(report.id)
    assert resolved.action_taken is True and resolved.action_taken_by_account.username == "admin"
    assert admin.admin_reports() == []
    assert [r.id for r in admin.admin_reports(resolved=True)] == [report.id]
    reopened = admin.admin_report_reopen(report.id)
    assert reopened.action_taken is False
    assert admin.admin_report(report.id).id == report.id

    # A user's token is no admin's, whatever its scopes.
    with pytest.raises(mastodon.MastodonAPIError):
        alice.admin_reports()
