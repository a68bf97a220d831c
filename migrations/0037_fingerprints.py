# Perceptual fingerprints of clips (fedisora.services.fingerprints): one row per clip, which is
# also the durable work of computing it, and the multi-index hashing table that finds them.
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0036_models")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Fingerprint",
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
                (
                    "clip",
                    fields.OneToOneField(
                        "fedisora.Clip",
                        source_field="clip_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("rate", fields.FloatField(default=8.0)),
                ("hashes", fields.TextField(default="", unique=False)),
                ("watermark_id", fields.BigIntField(null=True)),
                ("origin", fields.CharField(default="local", max_length=8)),
                (
                    "computed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "fingerprints",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": (
                    "A clip's perceptual fingerprint (:mod:`render.fingerprint`) and the durable "
                    "work of"
                ),
            },
            bases=["WorkRow"],
        ),
        ops.CreateModel(
            name="FingerprintChunk",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.IntField()),
                (
                    "fingerprint",
                    fields.ForeignKeyField(
                        "fedisora.Fingerprint",
                        source_field="fingerprint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
            ],
            options={
                "table": "fingerprint_chunks",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["key", "fingerprint_id"]),
                    Index(fields=["fingerprint_id"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "Multi-index hashing over indexed PDQ hashes: one row per (16-bit chunk at "
                    "its position,"
                ),
            },
        ),
    ]
