from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('fedisora', '0003_render_quota_guard')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PeerSignatureScheme',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('host', fields.CharField(unique=True, max_length=255)),
                ('scheme', fields.CharField(max_length=16)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'peer_signature_schemes', 'app': 'fedisora', 'pk_attr': 'id', 'table_description': 'The HTTP signature scheme a peer host accepted last.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Clip',
            name='quote_authorization_uri',
            field=fields.CharField(null=True, max_length=2048),
        ),
    ]
