# For You (fedisora.for_you): what players report per viewer and clip, learned interests,
# each account's controls, its precomputed candidate list and the durable row refreshing it;
# per-clip view, completion and skip counts.
import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import InterestKind, utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0029_worker_report")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ClipView",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "clip",
                    fields.ForeignKeyField(
                        "fedisora.Clip",
                        source_field="clip_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("impressions", fields.IntField(default=0)),
                ("watch_ms", fields.BigIntField(default=0)),
                ("completions", fields.IntField(default=0)),
                ("replays", fields.IntField(default=0)),
                ("skips", fields.IntField(default=0)),
                ("hidden", fields.BooleanField(default=False)),
                (
                    "first_seen_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_seen_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "clip_views",
                "app": "fedisora",
                "unique_together": (("account", "clip"),),
                "indexes": [
                    Index(fields=["account_id", "last_seen_at"]),
                    Index(fields=["last_seen_at"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "What one account's player reported of "
                    "one clip (fedisora.for_you.signals): one row per"
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ForYouCandidate",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "clip",
                    fields.ForeignKeyField(
                        "fedisora.Clip",
                        source_field="clip_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("generation", fields.IntField()),
                ("position", fields.IntField()),
                ("score", fields.FloatField()),
                ("source", fields.CharField(max_length=16)),
                ("reason", fields.CharField(max_length=300)),
            ],
            options={
                "table": "for_you_candidates",
                "app": "fedisora",
                "unique_together": (("account", "generation", "position"),),
                "pk_attr": "id",
                "table_description": (
                    "One clip of an account's precomputed For You list, in the order it is served"
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ForYouRefresh",
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
                    "account",
                    fields.OneToOneField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("generation", fields.IntField(default=0)),
                (
                    "requested_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                (
                    "refreshed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "for_you_refreshes",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": (
                    "The durable work of recomputing one account's For You candidates (one row per"
                ),
            },
            bases=["WorkRow"],
        ),
        ops.CreateModel(
            name="ForYouSettings",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.OneToOneField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("personalised", fields.BooleanField(default=True)),
                ("popular", fields.FloatField(default=0.5)),
                ("discovery", fields.FloatField(default=0.3)),
                ("include_unverified", fields.BooleanField(default=False)),
                (
                    "tags",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "for_you_settings",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "One account's For You controls. Without a row, the defaults below apply."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Interest",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="CREATOR: creator\nTAG: tag",
                        enum_type=InterestKind,
                        max_length=8,
                    ),
                ),
                ("key", fields.CharField(max_length=255)),
                ("weight", fields.FloatField(default=0.0)),
                ("events", fields.IntField(default=0)),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "interests",
                "app": "fedisora",
                "unique_together": (("account", "kind", "key"),),
                "pk_attr": "id",
                "table_description": (
                    "An account's learned affinity for a creator or a hashtag. ``weight`` is as of"
                ),
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Clip",
            name="completions_count",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="Clip",
            name="skips_count",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="Clip",
            name="views_count",
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
