from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0009_account_moves')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WebSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('fedisora.User', source_field='user_id', db_constraint=True, to_field='id', related_name='web_sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('user_agent', fields.CharField(default='', max_length=255)),
                ('ip', fields.CharField(default='', max_length=64)),
            ],
            options={'table': 'web_sessions', 'app': 'fedisora', 'indexes': [Index(fields=['user_id', 'last_seen_at']), Index(fields=['last_seen_at'])], 'pk_attr': 'id', 'table_description': "A browser's login, one row per login (Mastodon's session activations)."},
            bases=['Model'],
        ),
    ]
