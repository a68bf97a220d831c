# Moderation: silenced and sensitized accounts, appeals of warnings, the instance's rules,
# and the admin.report notification (fedisora.services.moderation, services.rules).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import AppealState, NotificationType, utcnow


class AlterFieldState(ops.AlterField):
    """An AlterField that changes only the migration state: the notification type's new
    choices (``admin.report``, ``fedisora.appeal_*``) leave its column (VARCHAR(32)) as it
    is, and on SQLite tortoise's AlterField would rebuild the table without its indexes."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0026_optouts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Appeal",
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
                        related_name="appeals",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "account_warning",
                    fields.OneToOneField(
                        "fedisora.AccountWarning",
                        source_field="account_warning_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="appeal",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("text", fields.TextField(unique=False)),
                (
                    "state",
                    fields.CharEnumField(
                        default=AppealState.PENDING,
                        description="PENDING: pending\nAPPROVED: approved\nREJECTED: rejected",
                        enum_type=AppealState,
                        max_length=16,
                    ),
                ),
                (
                    "decided_by",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="decided_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "decided_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "appeals",
                "app": "fedisora",
                "indexes": [Index(fields=["state", "id"])],
                "pk_attr": "id",
                "table_description": (
                    "The moderated account's appeal of a warning (Mastodon's ``Appeal``): "
                    "one per warning,"
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Rule",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("text", fields.TextField(unique=False)),
                ("hint", fields.TextField(default="", unique=False)),
                ("position", fields.IntField(default=0)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "rules",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "One of the instance's rules (Mastodon's ``Rule``), in ``position`` "
                    "order: listed at"
                ),
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Account",
            name="sensitized_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="silenced_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        AlterFieldState(
            model_name="Notification",
            name="type",
            field=fields.CharEnumField(
                description="MENTION: mention\nFAVOURITE: favourite\nREBLOG: reblog\nFOLLOW: follow\nFOLLOW_REQUEST: follow_request\nSTATUS: status\nUPDATE: update\nREMIX: fedisora.remix\nLIKENESS_USE: fedisora.likeness_use\nLIKENESS_REQUEST: fedisora.likeness_request\nRENDER_FINISHED: fedisora.render_finished\nRENDER_FAILED: fedisora.render_failed\nMODERATION_WARNING: moderation_warning\nADMIN_SIGN_UP: admin.sign_up\nADMIN_REPORT: admin.report\nAPPEAL_APPROVED: fedisora.appeal_approved\nAPPEAL_REJECTED: fedisora.appeal_rejected",
                enum_type=NotificationType,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="Notification",
            name="report",
            field=fields.ForeignKeyField(
                "fedisora.Report",
                source_field="report_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="notifications",
                on_delete=OnDelete.CASCADE,
            ),
        ),
    ]
