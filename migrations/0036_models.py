# Render models pulled by an admin from /admin/models: one durable work row per pull
# (render.model_pulls), run by a render worker.
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0035_relays")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ModelPull",
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
                ("name", fields.CharField(max_length=64)),
                ("source", fields.TextField(default="", unique=False)),
                ("use_after", fields.BooleanField(default=False)),
                (
                    "requested_by",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="requested_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("phase", fields.CharField(default="", max_length=16)),
                ("done_bytes", fields.BigIntField(default=0)),
                ("total_bytes", fields.BigIntField(default=0)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "model_pulls",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": (
                    "A render model an admin asked to pull (a durable work row: "
                    ":mod:`render.model_pulls`)."
                ),
            },
            bases=["WorkRow"],
        ),
    ]
