from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0002_client_api')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RenderQuotaGuard',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.OneToOneField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='render_quota_guard', on_delete=OnDelete.CASCADE)),
                ('submits', fields.BigIntField(default=0)),
            ],
            options={'table': 'render_quota_guards', 'app': 'fedisora', 'pk_attr': 'id', 'table_description': 'One row per account that has asked for a render: the serialisation point of quotas.'},
            bases=['Model'],
        ),
    ]
