from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0005_remote_media_checks')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Account',
            name='origin_suspended_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
