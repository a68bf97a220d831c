from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0013_likeness')]

    initial = False

    operations = [
        ops.AddField(
            model_name='LikenessUse',
            name='uri',
            field=fields.CharField(null=True, unique=True, max_length=2048),
        ),
    ]
