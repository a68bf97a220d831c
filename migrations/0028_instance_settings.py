# Instance settings saved on the admin page (fedisora.services.instance_settings), e-mail
# confirmation (fedisora.services.email_confirmation) and the outgoing mail queue
# (fedisora.services.mail). Existing users count as confirmed (the column's default).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0027_moderation")]

    initial = False

    operations = [
        ops.AddField(
            model_name="User",
            name="email_confirmed",
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.CreateModel(
            name="InstanceSetting",
            fields=[
                (
                    "key",
                    fields.CharField(
                        primary_key=True, unique=True, db_index=True, max_length=64
                    ),
                ),
                ("value", fields.TextField(unique=False)),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "instance_settings",
                "app": "fedisora",
                "pk_attr": "key",
                "table_description": (
                    "A saved instance setting, overriding its ``FEDISORA_*`` default."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EmailConfirmation",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "fedisora.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="email_confirmations",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "email_confirmations",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": "A link that confirms a user's e-mail address, sent by mail.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OutgoingMail",
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
                ("kind", fields.CharField(max_length=32)),
                ("to_address", fields.CharField(max_length=254)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "fedisora.User",
                        source_field="user_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="mails",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "sent_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "outgoing_mails",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["state", "next_attempt_at"]),
                    Index(fields=["state", "state_changed_at"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "A mail to send (a durable work row: :mod:`fedisora.services.mail`)."
                ),
            },
            bases=["WorkRow"],
        ),
    ]
