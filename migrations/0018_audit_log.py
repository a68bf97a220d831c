# The audit log of moderation and administration actions (fedisora.services.audit).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0017_likeness_single_use_sweep")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "actor",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="actor_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("actor_label", fields.CharField(max_length=320)),
                ("action", fields.CharField(max_length=64)),
                ("target_type", fields.CharField(default="", max_length=32)),
                ("target_id", fields.CharField(default="", max_length=64)),
                ("target_label", fields.CharField(default="", max_length=2048)),
                ("detail", fields.TextField(default="", unique=False)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "audit_log",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["action", "id"]),
                    Index(fields=["actor_id", "id"]),
                    Index(fields=["target_type", "target_id"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "One moderation or administration action: who did what to what, and when."
                ),
            },
            bases=["Model"],
        ),
    ]
