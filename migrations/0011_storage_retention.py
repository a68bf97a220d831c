import functools
from datetime import UTC, datetime
from json import dumps, loads
from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import utcnow

# The housekeeping chores (fedisora.work.housekeeping), one row each, due at once.
CHORES = ("work_retention", "media_gc", "expired_rows")


async def seed_chores(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    mark = "$%d" if client.capabilities.dialect == "postgres" else "?"
    values = ", ".join(mark % (i + 1) if "%" in mark else mark for i in range(5))
    now = datetime.now(UTC)
    for name in CHORES:
        await client.execute_query(
            "INSERT INTO chores (name, state, state_changed_at, next_attempt_at, created_at, "
            f"attempts, last_error, progress) VALUES ({values}, 0, '', '{{}}') "
            "ON CONFLICT (name) DO NOTHING",
            [name, "due", now, now, now],
        )


async def remove_chores(apps: Any, schema_editor: Any) -> None:
    return None  # the table goes with the migration


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0010_web_sessions")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Chore",
            fields=[
                ("state", fields.CharField(max_length=32)),
                (
                    "state_changed_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                ("attempts", fields.IntField(default=0)),
                (
                    "next_attempt_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "locked_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("lock_token", fields.CharField(null=True, max_length=36)),
                ("last_error", fields.TextField(default="", unique=False)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("name", fields.CharField(unique=True, max_length=64)),
                (
                    "progress",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "chores",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": "A periodic housekeeping task, one row per chore (see :mod:`fedisora.work.housekeeping`).",
            },
            bases=["WorkRow"],
        ),
        ops.CreateModel(
            name="WorkTally",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("table_name", fields.CharField(max_length=64)),
                ("state", fields.CharField(max_length=32)),
                ("group_key", fields.CharField(default="", max_length=255)),
                ("count", fields.BigIntField(default=0)),
            ],
            options={
                "table": "work_tallies",
                "app": "fedisora",
                "unique_together": (("table_name", "state", "group_key"),),
                "pk_attr": "id",
                "table_description": "How many rows of a durable-work table retention deleted, per state (and per group,",
            },
            bases=["Model"],
        ),
        ops.AddIndex(
            model_name="Clip",
            index=Index(fields=["media_id"]),
        ),
        ops.AddIndex(
            model_name="Delivery",
            index=Index(fields=["state", "state_changed_at"]),
        ),
        ops.AddField(
            model_name="InboxItem",
            name="host",
            field=fields.CharField(default="", db_default="", max_length=255),
        ),
        ops.AddField(
            model_name="InboxItem",
            name="size",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddIndex(
            model_name="InboxItem",
            index=Index(fields=["state", "state_changed_at"]),
        ),
        ops.AddIndex(
            model_name="InboxItem",
            index=Index(fields=["host", "size"]),
        ),
        ops.AddField(
            model_name="MediaFile",
            name="attached_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="MediaFile",
            name="doomed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name="MediaFile",
            index=Index(fields=["attached_at", "id"]),
        ),
        ops.AddIndex(
            model_name="QuoteCheck",
            index=Index(fields=["state", "state_changed_at"]),
        ),
        ops.AddIndex(
            model_name="RemoteMediaCheck",
            index=Index(fields=["state", "state_changed_at"]),
        ),
        ops.AddIndex(
            model_name="RenderJob",
            index=Index(fields=["state", "state_changed_at"]),
        ),
        ops.AddIndex(
            model_name="RenderJob",
            index=Index(fields=["output_id"]),
        ),
        # Media a clip holds was attached when it was posted.
        ops.RunSQL(
            "UPDATE media_files SET attached_at = created_at "
            "WHERE id IN (SELECT media_id FROM clips WHERE media_id IS NOT NULL)",
            reverse_sql="UPDATE media_files SET attached_at = NULL",
        ),
        ops.RunPython(seed_chores, remove_chores),
    ]
