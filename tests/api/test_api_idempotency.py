"""``Idempotency-Key`` on ``POST /api/v1/statuses``: a retry after the first try's process died
right after its commit, or raced it, answers the first try's status and posts nothing twice.

A kill is modelled as in ``tests/fedisora/test_outbox_kills.py``: :class:`Killed`, a
``BaseException``, is raised right after the commit of the transaction that stores the
status, before anything after it runs (the key's own write, in the code this replaced, and
the answer). The client saw no answer, so it retries with the same key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from apihelpers import Login, login
from factories import local_account, rendered_video

from fedisora.models import Clip, Comment, IdempotencyKey, OutboxEvent, RenderJob
from fedisora.services import events, idempotency, interactions, posts


class Killed(BaseException):
    """The web process died here."""


def _cut(exc: BaseException) -> bool:
    if isinstance(exc, Killed):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_cut(inner) for inner in exc.exceptions)
    return False


def _kill_after_commit(monkeypatch: pytest.MonkeyPatch, kind: str) -> list[int]:
    """Kill the process right after the first transaction committing a *kind* event commits;
    the list returned gets the event's row id when it happens."""
    real = events._committed
    cut: list[int] = []

    async def committed(rows: list[OutboxEvent]) -> None:
        if not cut and any(row.kind == kind for row in rows):
            cut.extend(row.pk for row in rows)
            raise Killed
        await real(rows)

    monkeypatch.setattr(events, "_committed", committed)
    return cut


async def _post(client: httpx.AsyncClient, me: Login, key: str, data: dict[str, str]) -> Any:
    return await client.post(
        "/api/v1/statuses", data=data, headers={**me.headers, "Idempotency-Key": key}
    )


Setup = Callable[[Login], Awaitable[tuple[str, dict[str, str]]]]


async def _comment(me: Login) -> tuple[str, dict[str, str]]:
    ben = await local_account("ben")
    clip = await posts.post_clip(ben, await rendered_video(ben), caption="ben's clip")
    return "comment.created", {"status": "nice", "in_reply_to_id": str(clip.pk)}


async def _clip(me: Login) -> tuple[str, dict[str, str]]:
    media = await rendered_video(me.account)
    return "clip.created", {"status": "my clip", "media_ids[]": str(media.pk)}


async def _render(me: Login) -> tuple[str, dict[str, str]]:
    media = await rendered_video(me.account)
    await RenderJob.create(account=me.account, state="ready", output=media, spec={})
    return "clip.created", {"status": "my render", "media_ids[]": str(media.pk)}


@pytest.mark.parametrize("setup", [_comment, _clip, _render], ids=["comment", "clip", "render"])
async def test_a_retry_after_a_kill_after_the_commit_answers_the_first_status(
    client: httpx.AsyncClient, db: str, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = await login(client, await local_account("ann"))
    kind, data = await setup(me)
    model = Comment if kind == "comment.created" else Clip
    before = await model.all().count()

    cut = _kill_after_commit(monkeypatch, kind)
    try:
        await _post(client, me, "retry-me", data)
    except BaseException as exc:
        if not _cut(exc):
            raise
    assert cut, "the status's transaction was not cut"
    monkeypatch.undo()

    (first,) = await model.filter(account_id=me.account.pk).order_by("-id").limit(1)
    assert await model.all().count() == before + 1
    if setup is _render:  # the render moved with its clip: nothing after the commit is needed
        job = await RenderJob.get(account_id=me.account.pk)
        assert (job.state, job.locked_until) == ("published", None)
        assert first.render_job_id == job.pk

    r = await _post(client, me, "retry-me", data)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(first.pk)
    assert await model.all().count() == before + 1
    assert await IdempotencyKey.filter(account_id=me.account.pk, status_id=first.pk).count() == 1
    if model is Clip:
        assert r.json()["media_attachments"][0]["id"] == data["media_ids[]"]

    # Another key is another post (and the same media cannot be posted twice).
    r = await _post(client, me, "another", data)
    if model is Comment:
        assert r.status_code == 200 and r.json()["id"] != str(first.pk)
    else:
        assert r.status_code in (409, 422), r.text


async def test_a_retry_racing_the_first_try_answers_its_status(
    client: httpx.AsyncClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both tries look the key up before either stored it: the second's comment is rolled
    back with its key, and it answers the first's."""
    me = await login(client, await local_account("ann"))
    _, data = await _comment(me)
    r = await _post(client, me, "race", data)
    assert r.status_code == 200, r.text
    first = r.json()["id"]

    real = idempotency.previous
    missed: list[idempotency.Key] = []

    async def too_early(key: idempotency.Key) -> int | None:
        if not missed:  # the second try's look-up ran before the first try committed
            missed.append(key)
            return None
        return await real(key)

    monkeypatch.setattr(idempotency, "previous", too_early)
    r = await _post(client, me, "race", data)
    assert missed and r.status_code == 200, r.text
    assert r.json()["id"] == first
    assert await Comment.all().count() == 1
    clip = await Clip.get(account__username="ben")
    assert clip.comments_count == 1


async def test_a_duplicate_key_rolls_the_status_back(db: str) -> None:
    """In the service: the comment, its counters and its event go with the refused key."""
    ann, ben = await local_account("ann"), await local_account("ben")
    clip = await posts.post_clip(ben, await rendered_video(ben))
    once = idempotency.Key(ann.pk, "k")
    first = await interactions.comment(ann, clip, "one", once=once)
    events_before = await OutboxEvent.all().count()
    with pytest.raises(idempotency.Replayed):
        await interactions.comment(ann, clip, "two", once=once)
    assert [c.pk for c in await Comment.all()] == [first.pk]
    assert (await Clip.get(pk=clip.pk)).comments_count == 1
    assert await OutboxEvent.all().count() == events_before
    # A key of another account is another key.
    await interactions.comment(ben, clip, "mine", once=idempotency.Key(ben.pk, "k"))
    assert await Comment.all().count() == 2


async def test_a_deleted_status_frees_its_key(client: httpx.AsyncClient, db: str) -> None:
    me = await login(client, await local_account("ann"))
    _, data = await _comment(me)
    r = await _post(client, me, "again", data)
    first = r.json()["id"]
    assert (await client.delete(f"/api/v1/statuses/{first}", headers=me.headers)).is_success
    r = await _post(client, me, "again", data)
    assert r.status_code == 200 and r.json()["id"] != first
    assert await IdempotencyKey.filter(status_id=int(r.json()["id"])).count() == 1
