# Reports (Mastodon's Report) and the warnings moderated accounts are sent (services.reports).
import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import NotificationType, ReportCategory, utcnow


class AlterFieldState(ops.AlterField):
    """An AlterField that changes only the migration state: the notification type's new
    choice (``moderation_warning``) leaves its column (VARCHAR(32)) as it is, and on SQLite
    tortoise's AlterField rebuilds the table without its indexes (as 0013 found)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0020_markers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Report",
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
                        related_name="reports_filed",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "target_account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="target_account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="reports_received",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "status_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "category",
                    fields.CharEnumField(
                        default=ReportCategory.OTHER,
                        description="SPAM: spam\nLEGAL: legal\nVIOLATION: violation\nOTHER: other",
                        enum_type=ReportCategory,
                        max_length=16,
                    ),
                ),
                (
                    "rule_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("comment", fields.TextField(default="", unique=False)),
                ("forwarded", fields.BooleanField(default=False)),
                ("uri", fields.CharField(null=True, max_length=2048)),
                (
                    "assigned_account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="assigned_account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "action_taken_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "action_taken_by_account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="action_taken_by_account_id",
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
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "reports",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["action_taken_at", "id"]),
                    Index(fields=["target_account_id", "id"]),
                    Index(fields=["account_id", "id"]),
                    Index(fields=["uri"]),
                ],
                "pk_attr": "id",
                "table_description": "A report about an account (and some of its clips or comments), Mastodon's ``Report``.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AccountWarning",
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
                        related_name="warnings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "report",
                    fields.ForeignKeyField(
                        "fedisora.Report",
                        source_field="report_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="warnings",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("action", fields.CharField(max_length=32)),
                ("text", fields.TextField(default="", unique=False)),
                (
                    "status_ids",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "account_warnings",
                "app": "fedisora",
                "indexes": [Index(fields=["account_id", "id"])],
                "pk_attr": "id",
                "table_description": "What a moderator did to an account, as its owner is told (Mastodon's",
            },
            bases=["Model"],
        ),
        AlterFieldState(
            model_name="Notification",
            name="type",
            field=fields.CharEnumField(
                description="MENTION: mention\nFAVOURITE: favourite\nREBLOG: reblog\nFOLLOW: follow\nFOLLOW_REQUEST: follow_request\nSTATUS: status\nUPDATE: update\nREMIX: fedisora.remix\nLIKENESS_USE: fedisora.likeness_use\nLIKENESS_REQUEST: fedisora.likeness_request\nRENDER_FINISHED: fedisora.render_finished\nRENDER_FAILED: fedisora.render_failed\nMODERATION_WARNING: moderation_warning",
                enum_type=NotificationType,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="Notification",
            name="account_warning",
            field=fields.ForeignKeyField(
                "fedisora.AccountWarning",
                source_field="account_warning_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="notifications",
                on_delete=OnDelete.CASCADE,
            ),
        ),
    ]
