# Invites (fedisora.services.invites) and the admin.sign_up notification type.
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import NotificationType, utcnow


class AlterFieldState(ops.AlterField):
    """An AlterField that changes only the migration state: the notification type's new
    choice (``admin.sign_up``) leaves its column (VARCHAR(32)) as it is, and on SQLite
    tortoise's AlterField would rebuild the table without its indexes (see 0013)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0021_reports")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Invite",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("code", fields.CharField(unique=True, max_length=32)),
                (
                    "creator",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="creator_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invites",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("max_uses", fields.IntField(null=True)),
                ("uses", fields.IntField(default=0)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("autofollow", fields.BooleanField(default=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "invites",
                "app": "fedisora",
                "indexes": [Index(fields=["creator_id", "id"])],
                "pk_attr": "id",
                "table_description": "An invite link (``/invite/<code>``) to sign up with, whatever the registration mode.",
            },
            bases=["Model"],
        ),
        AlterFieldState(
            model_name="Notification",
            name="type",
            field=fields.CharEnumField(
                description="MENTION: mention\nFAVOURITE: favourite\nREBLOG: reblog\nFOLLOW: follow\nFOLLOW_REQUEST: follow_request\nSTATUS: status\nUPDATE: update\nREMIX: fedisora.remix\nLIKENESS_USE: fedisora.likeness_use\nLIKENESS_REQUEST: fedisora.likeness_request\nRENDER_FINISHED: fedisora.render_finished\nRENDER_FAILED: fedisora.render_failed\nMODERATION_WARNING: moderation_warning\nADMIN_SIGN_UP: admin.sign_up",
                enum_type=NotificationType,
                max_length=32,
            ),
        ),
    ]
