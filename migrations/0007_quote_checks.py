from tortoise import migrations
from tortoise.migrations import operations as ops
from fedisora.models import utcnow
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0006_origin_suspension')]

    initial = False

    operations = [
        ops.CreateModel(
            name='QuoteCheck',
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
                ('remix_uri', fields.CharField(max_length=2048)),
                ('quoted_uri', fields.CharField(max_length=2048)),
                ('stamp_uri', fields.CharField(null=True, max_length=2048)),
                ('withdrawn', fields.BooleanField(default=False)),
                ('depth', fields.IntField(default=0)),
                ('origin', fields.CharField(max_length=255)),
                ('outcome', fields.CharField(default='', max_length=16)),
                ('reason', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'quote_checks', 'app': 'fedisora', 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['remix_uri'])], 'pk_attr': 'id', 'table_description': "A remote remix's FEP-044f stamp to verify, or to verify again."},
            bases=['WorkRow'],
        ),
        ops.AddField(
            model_name='Clip',
            name='quote_checked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Clip',
            name='quote_state',
            field=fields.CharField(null=True, max_length=16),
        ),
    ]
