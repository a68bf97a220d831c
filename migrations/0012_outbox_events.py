from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fedisora.models import utcnow
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0011_storage_retention')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('state', fields.CharField(max_length=32)),
                ('state_changed_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lock_token', fields.CharField(null=True, max_length=36)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('actor_id', fields.BigIntField()),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('deliveries', fields.IntField(default=0)),
            ],
            options={'table': 'outbox_events', 'app': 'fedisora', 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['actor_id', 'state', 'id']), Index(fields=['state', 'state_changed_at'])], 'pk_attr': 'id', 'table_description': 'A domain event written in the same transaction as the change it describes.'},
            bases=['WorkRow'],
        ),
    ]
