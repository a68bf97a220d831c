# ActivityPub relays the instance subscribes to (fedisora.services.relays).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from fedisora.models import RelayState, utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0034_for_you_round2")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Relay",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("inbox_url", fields.CharField(unique=True, max_length=2048)),
                ("actor_uri", fields.CharField(null=True, max_length=2048)),
                ("follow_uri", fields.CharField(unique=True, max_length=2048)),
                (
                    "state",
                    fields.CharEnumField(
                        default=RelayState.PENDING,
                        description="PENDING: pending\nACCEPTED: accepted\nREJECTED: rejected",
                        enum_type=RelayState,
                        max_length=16,
                    ),
                ),
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
                (
                    "answered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "relays",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": "An ActivityPub relay this instance subscribes to.",
            },
            bases=["Model"],
        ),
    ]
