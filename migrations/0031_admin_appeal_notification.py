# The fedisora.admin_appeal notification: staff are told of a new appeal
# (fedisora.services.moderation.file_appeal). A new choice of the notification type only.
from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from fedisora.models import NotificationType


class AlterFieldState(ops.AlterField):
    """An AlterField that changes only the migration state: the notification type's new
    choice (``fedisora.admin_appeal``, 21 characters) leaves its column (VARCHAR(32)) as it
    is, and on SQLite tortoise's AlterField would rebuild the table without its indexes (as
    in 0027_moderation)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0030_for_you")]

    initial = False

    operations = [
        AlterFieldState(
            model_name="Notification",
            name="type",
            field=fields.CharEnumField(
                description=(
                    "MENTION: mention\n"
                    "FAVOURITE: favourite\n"
                    "REBLOG: reblog\n"
                    "FOLLOW: follow\n"
                    "FOLLOW_REQUEST: follow_request\n"
                    "STATUS: status\n"
                    "UPDATE: update\n"
                    "REMIX: fedisora.remix\n"
                    "LIKENESS_USE: fedisora.likeness_use\n"
                    "LIKENESS_REQUEST: fedisora.likeness_request\n"
                    "RENDER_FINISHED: fedisora.render_finished\n"
                    "RENDER_FAILED: fedisora.render_failed\n"
                    "MODERATION_WARNING: moderation_warning\n"
                    "ADMIN_SIGN_UP: admin.sign_up\n"
                    "ADMIN_REPORT: admin.report\n"
                    "APPEAL_APPROVED: fedisora.appeal_approved\n"
                    "APPEAL_REJECTED: fedisora.appeal_rejected\n"
                    "ADMIN_APPEAL: fedisora.admin_appeal"
                ),
                enum_type=NotificationType,
                max_length=32,
            ),
        ),
    ]
