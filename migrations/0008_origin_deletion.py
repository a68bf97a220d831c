from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0007_quote_checks")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Account",
            name="origin_deleted_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # Remote accounts deleted by their server before this column were marked by both
        # suspension times set to one instant (and a moderator's suspension here can only
        # come later, an origin's own suspension keeps its earlier time).
        ops.RunSQL(
            "UPDATE accounts SET origin_deleted_at = suspended_at "
            "WHERE domain IS NOT NULL AND suspended_at IS NOT NULL "
            "AND suspended_at = origin_suspended_at",
            reverse_sql="UPDATE accounts SET origin_deleted_at = NULL",
        ),
    ]
