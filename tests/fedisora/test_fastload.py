"""fedisora.fastload: the read path's rows, loaded as tortoise loads them (issue 20, point 6)."""

from __future__ import annotations

from typing import Any

import pytest
from factories import local_account, remote_account
from for_you_factories import clip
from tortoise import Tortoise
from tortoise.exceptions import MultipleObjectsReturned
from tortoise.models import Model
from tortoise.queryset import QuerySet

from fedisora import fastload
from fedisora.models import Account, Clip, Comment, MediaFile, Visibility, utcnow


def _state(obj: Model) -> dict[str, Any]:
    """Every attribute of *obj* with its value's type: what tortoise set on it."""
    return {k: (v, type(v), getattr(v, "tzinfo", None)) for k, v in vars(obj).items()}


async def _content() -> tuple[Account, Account, list[Clip]]:
    ann = await local_account("ann", display_name="Ann")
    await Account.filter(pk=ann.pk).update(also_known_as=["https://a.test/u"])
    bob = await remote_account("bob", suspended_at=utcnow())
    clips = [await clip(ann), await clip(ann, visibility=Visibility.UNLISTED), await clip(bob)]
    await Clip.filter(pk=clips[0].pk).update(deleted_at=utcnow(), caption="gone")
    await Comment.create(account=bob, clip=clips[1], uri="https://b.test/c/1", content="hi")
    return ann, bob, clips


async def test_every_model_loads_exactly_as_tortoise_loads_it(db: str) -> None:
    """Every table's rows, through select, by_ids (each also a second time, from the row
    cache) and load_rows, give objects with the same attributes, values and types as
    tortoise's own (time zones included)."""
    await _content()
    checked = 0
    for model in Tortoise.apps["fedisora"].values():
        expected = {o.pk: _state(o) for o in await model.all()}
        if not expected:
            continue
        for _ in range(2):  # (the second time from the row cache on PostgreSQL)
            selected = await fastload.select(model.all())
            assert {o.pk: _state(o) for o in selected} == expected, model
            by_id = await fastload.by_ids(model, expected)
            assert {o.pk: _state(o) for o in by_id} == expected, model
        checked += 1
    assert checked >= 5  # (accounts, users, clips, comments, media at least)


async def test_related_rows_come_with_the_page_as_select_related_gives_them(db: str) -> None:
    ann, bob, clips = await _content()
    query = Clip.all().order_by("-id")
    wanted = await query.select_related("account")
    got = await fastload.select(Clip.all().order_by("-id"), related="account", order="-id")
    assert [c.pk for c in got] == [c.pk for c in wanted]  # (the order is kept)
    assert [_state(c.account) for c in got] == [_state(c.account) for c in wanted]
    assert fastload.related(got, "account").keys() == {ann.pk, bob.pk}
    oldest = await fastload.select(Clip.all().order_by("id"), related="account", order="id")
    assert [c.pk for c in oldest] == [c.pk for c in reversed(wanted)]
    by_id = await fastload.by_ids(Clip, [c.pk for c in clips], related="account")
    assert {c.pk: _state(c.account) for c in by_id} == {c.pk: _state(c.account) for c in wanted}
    # Several keys, one through another: the clips remixed, and their authors.
    remix = await clip(bob, remix_of=clips[1])
    paths = ("account", "remix_of", "remix_of.account")
    got = await fastload.select(Clip.all().order_by("-id"), related=paths, order="-id")
    wanted = (
        await Clip.all().order_by("-id").select_related("account", "remix_of", "remix_of__account")
    )
    assert [c.pk for c in got] == [c.pk for c in wanted]
    for mine, theirs in zip(got, wanted, strict=True):
        assert _state(mine.account) == _state(theirs.account)
        source: Any = getattr(mine, "_remix_of", None)
        expected: Any = getattr(theirs, "_remix_of", None)
        if theirs.remix_of_id is None:
            assert source is None and expected is None
        else:
            assert _state(source) == _state(expected)
            assert _state(source._account) == _state(expected._account)
    assert fastload.related(got, "remix_of").keys() == {clips[1].pk}
    assert remix.pk in {c.pk for c in got}
    # A query select cannot run itself is tortoise's, with the same answer.
    annotated = await fastload.select(Clip.all().only("id", "account_id"))
    assert sorted(c.pk for c in annotated) == sorted(c.pk for c in [*clips, remix])


async def test_a_cached_row_is_a_fresh_copy_and_a_changed_row_is_read_again(db: str) -> None:
    ann = await local_account("ann")
    await Account.filter(pk=ann.pk).update(also_known_as=["https://a.test/u"])
    ann = await Account.get(pk=ann.pk)
    first = (await fastload.by_ids(Account, [ann.pk]))[0]
    first.display_name = "changed in memory"
    assert first.also_known_as is not None
    first.also_known_as.append("https://mutated.test")  # (a JSON value: mutable)
    second = (await fastload.by_ids(Account, [ann.pk]))[0]
    assert second is not first
    assert second.display_name == ann.display_name
    assert second.also_known_as == ["https://a.test/u"]
    assert second._await_when_save is not first._await_when_save
    await Account.filter(pk=ann.pk).update(display_name="Renamed")
    third = (await fastload.by_ids(Account, [ann.pk]))[0]
    assert third.display_name == "Renamed"
    # Saving a loaded object works as for tortoise's.
    third.note = "saved"
    await third.save()
    assert (await Account.get(pk=ann.pk)).note == "saved"


async def test_by_ids_takes_any_number_of_ids(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = await local_account("ann")
    made = [await clip(ann) for _ in range(7)]
    monkeypatch.setattr(fastload, "SQLITE_CHUNK", 3)  # (several statements on SQLite)
    found = await fastload.by_ids(Clip, [c.pk for c in made] + [made[0].pk, 10**15])
    assert sorted(c.pk for c in found) == sorted(c.pk for c in made)
    assert await fastload.by_ids(Clip, []) == []
    assert await fastload.by_ids(MediaFile, [10**15]) == []


def _named(name: str) -> QuerySet[Account]:
    return Account.filter(username__iexact=name, domain=None)


async def test_prepared_runs_its_statement_with_each_calls_values(db: str) -> None:
    fastload._prepared.clear()
    ann = await local_account("ann")
    bob = await local_account("bob")
    assert await fastload.prepared_one(("test", "named"), Account, _named, "ANN") == ann
    slot = next(k for k in fastload._prepared if k[0] == ("test", "named"))
    assert isinstance(fastload._prepared[slot], tuple)  # (placed: built once)
    assert await fastload.prepared_one(("test", "named"), Account, _named, "Bob") == bob
    assert await fastload.prepared_one(("test", "named"), Account, _named, "nobody") is None

    # An argument equal to one of the statement's constants cannot be placed by identity:
    # the call is built as usual (right all the same), and the next one tries again.
    def visible_of(author_id: int, limit: int) -> QuerySet[Clip]:
        return Clip.filter(account_id=author_id, deleted_at=None).limit(limit)

    for _ in range(3):
        await clip(ann)
    key = ("test", "limit")
    same = ann.pk  # (one object for both arguments: its place is not known)
    assert len(await fastload.prepared(key, Clip, visible_of, same, same)) == min(3, same)
    assert not isinstance(fastload._prepared.get((key, _slot_kind())), tuple)
    two = ann.pk + 1  # (another object)
    assert len(await fastload.prepared(key, Clip, visible_of, ann.pk, two)) == min(3, two)
    assert isinstance(fastload._prepared.get((key, _slot_kind())), tuple)
    assert len(await fastload.prepared(key, Clip, visible_of, bob.pk, two)) == 0
    assert len(await fastload.prepared(key, Clip, visible_of, ann.pk, 10**6 + 1)) == 3
    assert len(await fastload.prepared(key, Clip, visible_of, ann.pk, 10**6 - 10**6 + 1)) == 1


def _slot_kind() -> str:
    from tortoise import connections

    return fastload._placeholders(connections.get("default"))


async def test_prepared_one_says_when_there_is_more_than_one(db: str) -> None:
    ann = await local_account("ann")
    await clip(ann)
    await clip(ann)

    def of(author_id: int) -> QuerySet[Clip]:
        return Clip.filter(account_id=author_id)

    with pytest.raises(MultipleObjectsReturned):
        await fastload.prepared_one(("test", "two"), Clip, of, ann.pk)


async def test_the_tortoise_internals_it_reads_are_there(db: str) -> None:
    """What fastload reads of tortoise besides its public API (pinned below 1.2)."""
    import tortoise

    assert tortoise.__version__.startswith("1.1."), tortoise.__version__
    query = Clip.all()
    for name in (
        "_prefetch_map",
        "_prefetch_queries",
        "_select_related",
        "_annotations",
        "_custom_filters",
        "_fields_for_select",
        "_single",
        "_select_for_update",
        "_db",
    ):
        assert hasattr(query, name), name
    meta = Account._meta
    for name in ("db_native_fields", "db_default_fields", "db_complex_fields"):
        assert all(len(entry) == 3 for entry in getattr(meta, name)), name
    assert meta.db_pk_column in meta.fields_db_projection.values()


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_a_statements_twin_gives_its_rows_keys_and_versions(db: str) -> None:
    """versions(): the same rows, in the same order, as (key, version, joined versions...);
    any update of a row read or joined changes them (fedisora.api.replay_cache relies on
    it). PostgreSQL's row versions only: the replay cache does not run on SQLite."""
    from tortoise import connections

    ann, bob, clips = await _content()
    await clip(bob, remix_of=clips[0])
    conn = connections.get("default")
    paths = ("account", "remix_of", "remix_of.account")
    seen: list[tuple[str, list[Any]]] = []
    run = conn.execute_query

    async def noting(query: str, values: Any = None) -> Any:
        seen.append((query, list(values or [])))
        return await run(query, values)

    conn.execute_query = noting  # type: ignore[method-assign]
    try:
        await fastload.select(Clip.all().order_by("-id").limit(10), related=paths, order="-id")
        await fastload.by_ids(Account, [ann.pk, bob.pk])
        pks = [c.pk for c in clips]
        await fastload.prepared("twins", Clip, lambda pk: Clip.filter(pk=pk), pks[0])
    finally:
        del conn.execute_query
    assert len(seen) == 3
    for statement, _ in seen:
        assert fastload.versions(statement) is not None, statement

    async def twin_of(n: int) -> list[tuple[Any, ...]]:
        statement, values = seen[n]
        _, found = await conn.execute_query(fastload.versions(statement) or "", values)
        return sorted(tuple(r) for r in found)

    _, rows = await conn.execute_query(*seen[0])
    before = await twin_of(0)
    assert sorted(r["id"] for r in rows) == [r[0] for r in before]
    assert all(len(r) == 2 + len(paths) for r in before)
    await Account.filter(pk=ann.pk).update(note="joined row updated")  # (the source's author)
    after = await twin_of(0)
    assert after != before
    assert [r[:2] for r in after] == [r[:2] for r in before]  # (the page's own rows: as were)
    await Clip.filter(pk=clips[-1].pk).update(likes_count=7)
    assert await twin_of(0) != after
    for n, table in ((1, Account), (2, Clip)):
        was = await twin_of(n)
        assert len(was) == len((await conn.execute_query(*seen[n]))[1]) > 0
        await table.filter(pk__in=[r[0] for r in was]).update(created_at=utcnow())
        assert await twin_of(n) != was
    # A statement not run here has no twin.
    assert fastload.versions('SELECT 1 FROM "clips"') is None
