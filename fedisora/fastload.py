"""Rows of the read path loaded without the ORM's per-query machinery (issue 20, point 6).

A timeline page loads four batches of rows (the page, its authors, the clips it remixes and
their authors); tortoise spent most of the page's CPU on them: building each statement anew
with pypika, its generic executor, and its per-field conversion of every row (11-15 us an
object on this machine, ``Model._init_from_db``). What this module changes is only how the
rows are turned into the same model objects, and how often a statement is built:

- :func:`select` runs a queryset's own SQL (every filter and rule stays in the ORM query
  that callers build) on the queryset's connection; with ``related``, that SQL joined to
  the rows a foreign key points to (a page and its authors in one statement);
- :func:`by_ids` loads rows by primary key (and those a foreign key points to) with one
  statement made once per model (per number of ids on SQLite), the batches pages load most;
- :func:`prepared` builds a call site's statement once and runs it with each call's values;
- :func:`load_rows` builds the objects with a loader made once per model, and does not
  convert again a row PostgreSQL returned exactly as before (a copy of the object built
  then: :data:`ROW_CACHE_SIZE`);
- :func:`versions` gives, for a statement run here, its twin: the same statement returning
  only each row's key and row versions (PostgreSQL's ``xmin``), which says whether its
  rows changed at a fraction of the cost of reading them again
  (:mod:`fedisora.api.replay_cache`).

Hand-rolled because tortoise offers none of it (``sql()`` drops the parameters; there is no
public "load these rows"): the loader mirrors ``Model._init_from_db`` (same attributes, the
fields' own ``to_python_value``), specialising only the conversion of an aware datetime,
which is ``astimezone`` of the default zone there too. tests/fedisora/test_fastload.py
checks every model's objects against tortoise's, field by field, on both databases, and
pins the tortoise internals this reads (pyproject.toml pins tortoise below 1.2). Statements
go through the connection's ``execute_query``: transactions, query logging and error
translation are tortoise's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from tortoise import timezone
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.data import DatetimeField, JSONField
from tortoise.models import Model
from tortoise.queryset import QuerySet

__all__ = [
    "by_ids",
    "configure",
    "load_rows",
    "prepared",
    "prepared_one",
    "related",
    "select",
    "versions",
]

M = TypeVar("M", bound=Model)

SQLITE_CHUNK = 500
"""Ids per statement on SQLite (whose oldest builds allow 999 parameters)."""

ROW_CACHE_SIZE = 10_000
"""Rows whose objects a process keeps for :func:`load_rows`, about 3 kB each
(``FEDISORA_ENTITY_CACHE_SIZE`` sets it with the entity caches: :func:`configure`; 0 turns
it off)."""

_built: dict[tuple[int, Any], tuple[tuple[Any, ...], dict[str, Any]]] = {}
_shapes: dict[tuple[Any, ...], int] = {}
_loaders: dict[tuple[type[Model], str], Callable[[Mapping[str, Any]], Any]] = {}
_statements: dict[tuple[type[Model], str, int, str], str] = {}
_versions: dict[str, str | None] = {}

VERSIONS_SIZE = 256
"""Statements whose twins (:func:`versions`) a process keeps, first in first out (a
joined page's statement is about 10 kB; its shapes vary with a page's filters)."""
VERSION = "fedisora.version"
"""The column of a twin's root row version (see :func:`versions`)."""


def forget() -> None:
    """Drop every loader, kept row and prepared statement: tortoise is being set up again
    (which of a model's fields its database's driver converts itself depends on the
    database: SQLite returns times as text, PostgreSQL as datetimes)."""
    _loaders.clear()
    _built.clear()
    _prepared.clear()
    _statements.clear()
    _versions.clear()


def configure(size: int) -> None:
    """Keep at most *size* rows' objects (0: none)."""
    global ROW_CACHE_SIZE
    ROW_CACHE_SIZE = max(size, 0)
    while len(_built) > ROW_CACHE_SIZE:
        del _built[next(iter(_built))]


def _converter(field: Any) -> Callable[[Any], Any]:
    """*field*'s ``to_python_value``; for an unmodified datetime field with time zones on,
    the same result without its generic checks when the value is an aware datetime."""
    convert: Callable[[Any], Any] = field.to_python_value
    if type(field).to_python_value is not DatetimeField.to_python_value or not (
        timezone.get_use_tz()
    ):
        return convert
    zone = timezone.get_default_timezone()

    def aware(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is datetime and value.tzinfo is not None:
            return value.astimezone(zone)
        return convert(value)

    return aware


def _loader(model: type[M], prefix: str = "") -> Callable[[Mapping[str, Any]], M]:
    """The loader of *model*'s rows, whose columns are named *prefix* + column."""
    found = _loaders.get((model, prefix))
    if found is not None:
        return found
    meta = model._meta
    native = tuple((prefix + key, attr) for key, attr, _ in meta.db_native_fields)
    typed = tuple(
        (prefix + key, attr, field.field_type) for key, attr, field in meta.db_default_fields
    )
    complex_ = tuple(
        (prefix + key, attr, _converter(field)) for key, attr, field in meta.db_complex_fields
    )
    custom_pk = meta.db_pk_column not in meta.generated_db_fields
    new = model.__new__
    init_from_db = model._init_from_db

    def load(row: Mapping[str, Any]) -> M:
        obj = new(model)
        values = obj.__dict__
        try:
            for key, attr in native:
                values[attr] = row[key]
            for key, attr, kind in typed:
                value = row[key]
                values[attr] = None if value is None else kind(value)
            for key, attr, convert in complex_:
                values[attr] = convert(row[key])
        except KeyError:  # (some columns only: tortoise's own path marks it partial)
            if prefix:
                raise
            return init_from_db(**dict(row))
        values["_partial"] = False
        values["_saved_in_db"] = True
        values["_custom_generated_pk"] = custom_pk
        values["_await_when_save"] = {}
        return obj

    _loaders[(model, prefix)] = load
    return load


def load_rows(model: type[M], rows: Iterable[Mapping[str, Any]], prefix: str = "") -> list[M]:
    """*model* objects of database *rows* (all columns, by column name, each *prefix* +
    column), as tortoise makes them.

    A row that PostgreSQL returned exactly as it did before, to the same statement shape,
    is not converted again: its object is a copy of the one built then (kept for
    :data:`ROW_CACHE_SIZE` rows a process, first in first out; JSON values are decoded
    anew, as they are mutable). Equal column values give an equal object, so nothing
    can be served that the database did not just return."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return []
    load = _loader(model, prefix)
    if ROW_CACHE_SIZE <= 0 or type(rows[0]) is not asyncpg.Record:
        return [load(row) for row in rows]
    keys = list(rows[0].keys())
    mine = [i for i, k in enumerate(keys) if k.startswith(prefix) and "." not in k[len(prefix) :]]
    start, end = mine[0], mine[-1] + 1
    shape = _shapes.setdefault((model, prefix, tuple(keys[start:end])), len(_shapes))
    at = keys.index(prefix + model._meta.db_pk_column)
    fresh = _fresh_fields(model, prefix)
    new = model.__new__
    built = _built
    out: list[M] = []
    for row in rows:
        raw = tuple(row)[start:end]
        key = (shape, raw[at - start])
        hit = built.get(key)
        if hit is not None and hit[0] == raw:
            obj = new(model)
            values = obj.__dict__
            values.update(hit[1])
            for column, attr, convert in fresh:
                values[attr] = convert(row[column])
            values["_await_when_save"] = {}
        else:
            obj = load(row)
            built[key] = (raw, dict(obj.__dict__))
            if len(built) > ROW_CACHE_SIZE:
                del built[next(iter(built))]
        out.append(obj)
    return out


def _fresh_fields(model: type[Model], prefix: str) -> tuple[tuple[str, str, Any], ...]:
    """The fields whose values are mutable (JSON): converted anew for each object."""
    return tuple(
        (prefix + key, attr, field.to_python_value)
        for key, attr, field in model._meta.db_complex_fields
        if isinstance(field, JSONField)
    )


def _runnable(query: QuerySet[Any]) -> bool:
    """Whether :func:`select` runs *query* itself: whole rows of its model and nothing else
    (no related rows, prefetch, annotation, column subset, single object or row lock)."""
    return not (
        query._prefetch_map
        or query._prefetch_queries
        or query._select_related
        or query._annotations
        or query._custom_filters
        or query._fields_for_select
        or query._single
        or query._select_for_update
    )


def _parameterized(query: QuerySet[Any]) -> tuple[str, list[Any]]:
    """*query*'s SQL and parameters, as tortoise runs it (its connection chosen)."""
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, values = query.query.get_parameterized_sql()
    return sql, list(values)


async def select(
    query: QuerySet[M], *, related: str | Sequence[str] = (), order: str = ""
) -> list[M]:
    """The objects of *query*, as ``await query`` gives them.

    *related*: foreign keys whose rows come in the same statement, as with
    ``select_related`` (the query is wrapped: its own SQL, joined to them): a key of the
    query's model (``"account"``), or of a row named before it (``"remix_of.account"``,
    after ``"remix_of"``). The order of *query* must then be given as *order* (``"-id"``),
    since a join does not keep it."""
    paths = (related,) if isinstance(related, str) and related else tuple(related)
    if not _runnable(query) or (paths and not order):
        if paths:
            query = query.select_related(*(p.replace(".", "__") for p in paths))
        return list(await query)
    inner, values = _parameterized(query)
    sql = _joined(query.model, paths, inner) if paths else inner
    _note_versions(sql, query.model, paths, inner)
    _, rows = await query._db.execute_query(sql, values)
    if paths and rows:
        field = order.lstrip("-")
        rows = sorted(rows, key=lambda row: row[field], reverse=order.startswith("-"))
    objects = load_rows(query.model, rows)
    if paths and rows:
        _attach_paths(query.model, objects, rows, paths)
    return objects


def _attach_paths(model: type[Model], objects: list[Any], rows: Any, paths: Sequence[str]) -> None:
    """Set the rows each of *paths* points to on the objects they belong to (``_<key>``,
    None where a row has none), from the columns :func:`_joined` named."""
    per_row: dict[str, list[Any]] = {"": list(objects)}
    model_of: dict[str, type[Model]] = {"": model}
    for path in paths:
        parent, _, name = path.rpartition(".")
        other = _related_model(model_of[parent], name)
        per_row[path] = _set_related(per_row[parent], rows, other, f"{path}.", name)
        model_of[path] = other


PREPARE_TRIES = 3
"""First calls of a shape :func:`prepared` tries to make its statement from, before it
builds every call's statement instead (see there)."""

_prepared: dict[tuple[Hashable, str], tuple[str, list[Any], list[int], type[Model]] | int] = {}


async def prepared(
    key: Hashable, model: type[M], query_of: Callable[..., QuerySet[M]], *args: Any
) -> list[M]:
    """``await select(query_of(*args))`` (a query of *model*), with its SQL built once
    per *key*.

    tortoise builds a query's SQL anew on each run (about 0.1 ms of CPU with pypika, the
    largest cost of a page's small queries). The first call of a *key* builds it as usual
    and notes where each of *args* went among the statement's parameters (by identity: a
    value tortoise converted, or one found twice, or one equal to a constant of the
    statement is not placed, and the next call tries again, :data:`PREPARE_TRIES` times);
    later calls run that statement with their own *args* in those places.

    *key* must stand for everything that shapes the statement besides the values of
    *args*: a name for the call site and the branches it took (which filters, how many
    ids). *args* must not be None or a bool (those can change the SQL, not only a value)."""
    if any(a is None or isinstance(a, bool) for a in args):
        return await select(query_of(*args))
    db = model._choose_db()
    slot = (key, _placeholders(db))
    found = _prepared.get(slot, 0)
    if isinstance(found, tuple):
        sql, template, places, _ = found
        values = list(template)
        for place, value in zip(places, args, strict=True):
            values[place] = value
        _, rows = await db.execute_query(sql, values)
        return load_rows(model, rows)
    query = query_of(*args)
    if not _runnable(query) or query.model is not model or found >= PREPARE_TRIES:
        return await select(query)
    sql, values = _parameterized(query)
    spots = [[i for i, v in enumerate(values) if v is a] for a in args]
    if all(len(s) == 1 for s in spots) and len({s[0] for s in spots}) == len(args):
        made = [s[0] for s in spots]
        constants = [v for i, v in enumerate(values) if i not in made]
        if not any(c is a for c in constants for a in args):
            _prepared[slot] = (sql, list(values), made, query.model)
    _note_versions(sql, query.model, (), sql)
    if not isinstance(_prepared.get(slot), tuple):
        _prepared[slot] = found + 1  # (not placed: the next call tries again)
    _, rows = await query._db.execute_query(sql, values)
    return load_rows(query.model, rows)


async def prepared_one(
    key: Hashable, model: type[M], query_of: Callable[..., QuerySet[M]], *args: Any
) -> M | None:
    """The object the query finds, or None (as ``get_or_none``), its SQL built once per *key*
    (:func:`prepared`)."""
    found = await prepared(key, model, lambda *a: query_of(*a).limit(2), *args)
    if len(found) > 1:
        return await query_of(*args).get_or_none()  # (its MultipleObjectsReturned)
    return found[0] if found else None


def _placeholders(db: BaseDBAsyncClient) -> str:
    return "$n" if isinstance(db, AsyncpgDBClient) else db.capabilities.dialect


def _join_parts(model: type[Model], paths: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """For a select of *model*'s rows named ``"page"``, joined to the rows each of *paths*
    points to: their columns (named ``path.column``), their row versions, the joins."""
    columns: list[str] = []
    row_versions: list[str] = []
    joins: list[str] = []
    alias_of = {"": '"page"'}
    model_of: dict[str, type[Model]] = {"": model}
    for n, path in enumerate(paths):
        parent, _, name = path.rpartition(".")
        owner = model_of[parent]
        other = _related_model(owner, name)
        source: Any = owner._meta.fields_map[name]
        alias = f'"r{n}"'
        columns += [
            f'{alias}."{c}" "{path}.{c}"' for c in other._meta.fields_db_projection.values()
        ]
        row_versions.append(f"{alias}.xmin::text")
        joins.append(
            f' LEFT OUTER JOIN "{other._meta.db_table}" {alias} ON {alias}."'
            f'{other._meta.db_pk_column}" = {alias_of[parent]}."{source.source_field}"'
        )
        alias_of[path] = alias
        model_of[path] = other
    return columns, row_versions, joins


def _joined(model: type[Model], paths: Sequence[str], sql: str) -> str:
    """*sql* (a select of *model*'s rows) with the rows each of *paths* points to, as
    columns named ``path.column``."""
    columns, _, joins = _join_parts(model, paths)
    picked = ", ".join(['"page".*', *columns])
    return f'SELECT {picked} FROM ({sql}) "page"{"".join(joins)}'


def _note_versions(statement: str, model: type[Model], paths: Sequence[str], sql: str) -> None:
    """Make and keep the twin of *statement*: *sql* (a select of *model*'s rows, the
    statement itself or its inner select) joined to *paths* as :func:`_joined` joins them,
    each row giving only its key and the versions of the rows it was made from."""
    if statement in _versions:
        return
    table = f'"{model._meta.db_table}"'
    head = next((h for h in ("SELECT DISTINCT ", "SELECT ") if sql.startswith(h)), None)
    twin = None
    if head is not None and f"FROM {table}" in sql:
        # The root table's version is added in front of the select's own columns (which
        # stay: DISTINCT and ORDER BY may need them); the rest is the statement's.
        inner = f'{head}{table}.xmin::text "{VERSION}", {sql[len(head) :]}'
        _, row_versions, joins = _join_parts(model, paths)
        pk = model._meta.db_pk_column
        picked = ", ".join([f'"page"."{pk}"', f'"page"."{VERSION}"', *row_versions])
        twin = f'SELECT {picked} FROM ({inner}) "page"{"".join(joins)}'
    while len(_versions) >= VERSIONS_SIZE:
        del _versions[next(iter(_versions))]
    _versions[statement] = twin


def versions(statement: str) -> str | None:
    """The twin of *statement* (run by this module since it was last set up), or None.

    The twin takes the same values and selects the same rows from the same tables, in the
    same order, but returns of each only its key and the row version (``xmin``, changed by
    every update of a row) of it and of each row joined to it. Two runs of a statement
    returned the same rows when its twin returned the same (key, versions) rows, run
    against the same snapshot as the first of them: the rows are made of nothing else.
    PostgreSQL only (SQLite has no row versions: running it there fails)."""
    return _versions.get(statement)


def _set_related(
    owners: list[Any], rows: Any, model: type[Model], prefix: str, relation: str
) -> list[Any]:
    """Set on each row's owner (None: the row has none) the *model* object of its columns
    named *prefix* + column, as ``_<relation>``; returns those objects, by row."""
    pk = prefix + model._meta.db_pk_column
    present = [i for i, row in enumerate(rows) if row[pk] is not None and owners[i] is not None]
    loaded = dict(zip(present, load_rows(model, [rows[i] for i in present], prefix), strict=True))
    for i, owner in enumerate(owners):
        if owner is not None:
            object.__setattr__(owner, f"_{relation}", loaded.get(i))
    return [loaded.get(i) for i in range(len(rows))]


def related(objects: Iterable[Model], relation: str) -> dict[Any, Any]:
    """The objects *objects* were loaded with for *relation* (``select_related``), by
    primary key."""
    out: dict[Any, Any] = {}
    for obj in objects:
        found = getattr(obj, f"_{relation}", None)
        if found is not None:
            out[found.pk] = found
    return out


def _related_model(model: type[Model], relation: str) -> type[Model]:
    """The model *model*'s foreign key *relation* points to."""
    field: Any = model._meta.fields_map[relation]
    return field.related_model  # type: ignore[no-any-return]


def _statement(model: type[Model], dialect: str, count: int, relation: str) -> str:
    key = (model, dialect, count if dialect == "sqlite" else 0, relation)
    found = _statements.get(key)
    if found is None:
        meta = model._meta
        columns = ", ".join(f'"{c}"' for c in meta.fields_db_projection.values())
        pk = f'"{meta.db_pk_column}"'
        where = (
            f"{pk} = ANY($1)" if dialect == "postgres" else f"{pk} IN ({', '.join('?' * count)})"
        )
        inner = f'SELECT {columns} FROM "{meta.db_table}" WHERE {where}'
        paths = (relation,) if relation else ()
        found = _joined(model, paths, inner) if paths else inner
        _note_versions(found, model, paths, inner)
        _statements[key] = found
    return found


async def by_ids(
    model: type[M],
    ids: Iterable[Any],
    *,
    related: str = "",
    db: BaseDBAsyncClient | None = None,
) -> list[M]:
    """The rows of *model* whose primary key is among *ids*, in no particular order, as
    ``model.filter(pk__in=ids)``; with the rows its foreign key *related* points to, as
    ``.select_related(related)`` (one statement)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    db = db or model._choose_db()
    dialect = db.capabilities.dialect
    batches: list[list[Any]]
    if isinstance(db, AsyncpgDBClient):  # (its transactions too; $n placeholders)
        batches = [[wanted]]
    elif dialect == "sqlite":
        batches = [wanted[i : i + SQLITE_CHUNK] for i in range(0, len(wanted), SQLITE_CHUNK)]
    else:
        query = model.filter(pk__in=wanted).using_db(db)
        return list(await (query.select_related(related) if related else query))
    out: list[M] = []
    for values in batches:
        count = len(values) if dialect == "sqlite" else 0
        statement = _statement(model, "postgres" if count == 0 else "sqlite", count, related)
        _, rows = await db.execute_query(statement, values)
        objects = load_rows(model, rows)
        if related and rows:
            _attach_paths(model, objects, rows, (related,))
        out.extend(objects)
    return out
