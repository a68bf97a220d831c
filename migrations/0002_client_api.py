from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Bookmark',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='bookmarks', on_delete=OnDelete.CASCADE)),
                ('status_id', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'bookmarks', 'app': 'fedisora', 'unique_together': (('account', 'status_id'),), 'indexes': [Index(fields=['account_id', 'id'])], 'pk_attr': 'id', 'table_description': 'A status (clip or comment) an account bookmarked, private to that account.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=200)),
                ('status_id', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'idempotency_keys', 'app': 'fedisora', 'unique_together': (('account', 'key'),), 'pk_attr': 'id', 'table_description': 'An ``Idempotency-Key`` a client sent with ``POST /api/v1/statuses`` and its result.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthApplication',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('website', fields.CharField(null=True, max_length=2048)),
                ('redirect_uris', fields.TextField(default='', unique=False)),
                ('scopes', fields.CharField(default='read', max_length=1000)),
                ('client_id', fields.CharField(unique=True, max_length=64)),
                ('client_secret', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_applications', 'app': 'fedisora', 'pk_attr': 'id', 'table_description': 'A client registered with ``POST /api/v1/apps``.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthAccessToken',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token', fields.CharField(unique=True, max_length=64)),
                ('refresh_token', fields.CharField(null=True, unique=True, max_length=64)),
                ('application', fields.ForeignKeyField('fedisora.OAuthApplication', source_field='application_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', null=True, db_constraint=True, to_field='id', related_name='oauth_tokens', on_delete=OnDelete.CASCADE)),
                ('scopes', fields.CharField(max_length=1000)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_access_tokens', 'app': 'fedisora', 'pk_attr': 'id', 'table_description': 'A bearer token. ``account`` is null for client_credentials (app-only) tokens.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthAuthorizationCode',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('application', fields.ForeignKeyField('fedisora.OAuthApplication', source_field='application_id', db_constraint=True, to_field='id', related_name='codes', on_delete=OnDelete.CASCADE)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='oauth_codes', on_delete=OnDelete.CASCADE)),
                ('redirect_uri', fields.CharField(max_length=2048)),
                ('scopes', fields.CharField(max_length=1000)),
                ('code_challenge', fields.CharField(null=True, max_length=128)),
                ('code_challenge_method', fields.CharField(null=True, max_length=8)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_authorization_codes', 'app': 'fedisora', 'pk_attr': 'id', 'table_description': 'A one-time code from the consent page, with its PKCE challenge (RFC 7636).'},
            bases=['Model'],
        ),
    ]
