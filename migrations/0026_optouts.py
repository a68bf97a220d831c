# The rights holders' opt-out registry and its subscriptions (fedisora.services.optouts).
import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import OptOutMode, OptOutState, PolicyList, utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0025_render_quotas")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OptOut",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("who", fields.CharField(max_length=200)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="PUBLIC_FIGURE: public_figure\nPROTECTED_WORK: protected_work",
                        enum_type=PolicyList,
                        max_length=32,
                    ),
                ),
                (
                    "terms",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("evidence", fields.TextField(default="", unique=False)),
                ("contact", fields.CharField(default="", max_length=500)),
                (
                    "state",
                    fields.CharEnumField(
                        default=OptOutState.PENDING,
                        description="PENDING: pending\nAPPROVED: approved\nREJECTED: rejected",
                        enum_type=OptOutState,
                        max_length=16,
                    ),
                ),
                (
                    "reviewed_by",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="reviewed_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "reviewed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("reason", fields.CharField(default="", max_length=1000)),
                ("source", fields.CharField(default="local", max_length=1024)),
                ("remote_id", fields.CharField(default="", max_length=1024)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "optouts",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "id"]), Index(fields=["source", "remote_id"])],
                "pk_attr": "id",
                "table_description": (
                    "A rights holder's request that renders never name them or their work."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OptOutPublication",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("version", fields.BigIntField(default=0)),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "optout_publication",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "The version of this instance's published opt-out list (one "
                    "row, id 1): bumped on"
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OptOutSubscription",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("url", fields.CharField(unique=True, max_length=1024)),
                (
                    "mode",
                    fields.CharEnumField(
                        default=OptOutMode.REVIEW,
                        description="REVIEW: review\nAUTO: auto",
                        enum_type=OptOutMode,
                        max_length=16,
                    ),
                ),
                ("issuer", fields.CharField(default="", max_length=1024)),
                ("applied_version", fields.BigIntField(default=0)),
                (
                    "pending",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "last_fetched_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("last_error", fields.CharField(default="", max_length=2000)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "optout_subscriptions",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "Another instance's signed opt-out list, fetched by the ``optout_lists`` chore."
                ),
            },
            bases=["Model"],
        ),
    ]
