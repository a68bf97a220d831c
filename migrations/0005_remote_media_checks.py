from tortoise import migrations
from tortoise.migrations import operations as ops
from fedisora.models import utcnow
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0004_federation_quotes_schemes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RemoteMediaCheck',
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
                ('media', fields.ForeignKeyField('fedisora.MediaFile', source_field='media_id', db_constraint=True, to_field='id', related_name='provenance_checks', on_delete=OnDelete.CASCADE)),
                ('clip_uri', fields.CharField(max_length=2048)),
                ('url', fields.CharField(max_length=2048)),
                ('origin', fields.CharField(max_length=255)),
            ],
            options={'table': 'remote_media_checks', 'app': 'fedisora', 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['origin', 'state'])], 'pk_attr': 'id', 'table_description': "A remote clip's video to fetch once and check for C2PA provenance."},
            bases=['WorkRow'],
        ),
    ]
