from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fedisora.models import utcnow
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0014_likeness_remote')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CameoCheck',
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
                ('clip_uri', fields.CharField(max_length=2048)),
                ('author_uri', fields.CharField(max_length=2048)),
                ('note', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('consent_uris', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('depth', fields.IntField(default=0)),
                ('outcome', fields.CharField(default='', max_length=16)),
                ('reason', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'cameo_checks', 'app': 'fedisora', 'indexes': [Index(fields=['state', 'next_attempt_at']), Index(fields=['clip_uri'])], 'pk_attr': 'id', 'table_description': 'The consents of a remote clip with cameos, verified before the clip is shown.'},
            bases=['WorkRow'],
        ),
        ops.CreateModel(
            name='ReceivedRevocation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('uri', fields.CharField(unique=True, max_length=2048)),
                ('owner_uri', fields.CharField(max_length=2048)),
                ('object_uri', fields.CharField(max_length=2048)),
                ('published', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('take_down', fields.BooleanField(default=False)),
                ('document', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likeness_revocations_received', 'app': 'fedisora', 'indexes': [Index(fields=['owner_uri']), Index(fields=['object_uri'])], 'pk_attr': 'id', 'table_description': 'A LikenessRevocation by a remote owner, verified and applied once.'},
            bases=['Model'],
        ),
    ]
