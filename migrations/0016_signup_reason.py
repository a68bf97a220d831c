from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0015_likeness_clips')]

    initial = False

    operations = [
        ops.AddField(
            model_name='User',
            name='signup_reason',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
    ]
