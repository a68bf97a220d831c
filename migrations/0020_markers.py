# Read positions in timelines (Mastodon markers): fedisora.services.markers.
from tortoise import migrations
from tortoise.migrations import operations as ops
from fedisora.models import utcnow
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0019_prompt_policy')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Marker',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('timeline', fields.CharField(max_length=16)),
                ('last_read_id', fields.BigIntField()),
                ('version', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'markers', 'app': 'fedisora', 'unique_together': (('account_id', 'timeline'),), 'pk_attr': 'id', 'table_description': 'Where a user stopped reading a timeline (``home`` or ``notifications``), shared by'},
            bases=['Model'],
        ),
    ]
