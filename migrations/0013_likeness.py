from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from fedisora.models import Audience, LikenessState, NotificationType, utcnow
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class AlterFieldState(ops.AlterField):
    """An AlterField that changes only the migration state: the notification type's new
    choice leaves its column (VARCHAR(32)) as it is, and on SQLite tortoise's AlterField
    rebuilds the table without its indexes (it dropped notifications' (recipient_id, id))."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        return None

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        return None


class Migration(migrations.Migration):
    dependencies = [('fedisora', '0012_outbox_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConsentCheck',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('requester', fields.ForeignKeyField('fedisora.Account', source_field='requester_id', db_constraint=True, to_field='id', related_name='consent_checks_made', on_delete=OnDelete.CASCADE)),
                ('owner', fields.ForeignKeyField('fedisora.Account', source_field='owner_id', db_constraint=True, to_field='id', related_name='consent_checks', on_delete=OnDelete.CASCADE)),
                ('likeness_id', fields.BigIntField(null=True)),
                ('grant_id', fields.BigIntField(null=True)),
                ('render_job_id', fields.BigIntField(null=True)),
                ('stage', fields.CharField(default='', max_length=16)),
                ('publish', fields.BooleanField(default=False)),
                ('allowed', fields.BooleanField()),
                ('reason', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_checks', 'app': 'fedisora', 'indexes': [Index(fields=['owner_id', 'id']), Index(fields=['render_job_id'])], 'pk_attr': 'id', 'table_description': 'The audit trail: every consent check, allowed or refused, with its reason.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Likeness',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.OneToOneField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='likeness', on_delete=OnDelete.CASCADE)),
                ('uri', fields.CharField(null=True, max_length=2048)),
                ('state', fields.CharEnumField(default=LikenessState.PENDING, description='PENDING: pending\nVERIFIED: verified\nREJECTED: rejected\nREVOKED: revoked', enum_type=LikenessState, max_length=16)),
                ('reference_files', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('verification_file', fields.CharField(null=True, max_length=512)),
                ('verification_type', fields.CharField(default='', max_length=100)),
                ('challenge_code', fields.CharField(default='', max_length=32)),
                ('verified_by', fields.ForeignKeyField('fedisora.Account', source_field='verified_by_id', null=True, db_constraint=True, to_field='id', related_name='likenesses_verified', on_delete=OnDelete.SET_NULL)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('verification_method', fields.CharField(default='', max_length=64)),
                ('reason', fields.CharField(default='', max_length=500)),
                ('audience', fields.CharEnumField(default=Audience.NOBODY, description='NOBODY: nobody\nME: me\nAPPROVED: approved\nMUTUALS: mutuals\nEVERYONE: everyone', enum_type=Audience, max_length=16)),
                ('approval_required', fields.BooleanField(default=False)),
                ('drafts_only', fields.BooleanField(default=False)),
                ('restrictions', fields.CharField(default='', max_length=1000)),
                ('default_expires_in', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likenesses', 'app': 'fedisora', 'indexes': [Index(fields=['state', 'id'])], 'pk_attr': 'id', 'table_description': "An account's likeness: its private reference images and who may use them."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LikenessChallenge',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account', fields.ForeignKeyField('fedisora.Account', source_field='account_id', db_constraint=True, to_field='id', related_name='likeness_challenges', on_delete=OnDelete.CASCADE)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('consumed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likeness_challenges', 'app': 'fedisora', 'indexes': [Index(fields=['account_id', 'id'])], 'pk_attr': 'id', 'table_description': "A one-time code to show in a likeness's verification sample."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LikenessGrant',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('fedisora.Account', source_field='owner_id', db_constraint=True, to_field='id', related_name='likeness_grants_given', on_delete=OnDelete.CASCADE)),
                ('grantee', fields.ForeignKeyField('fedisora.Account', source_field='grantee_id', db_constraint=True, to_field='id', related_name='likeness_grants_held', on_delete=OnDelete.CASCADE)),
                ('basis', fields.CharField(default='approved', max_length=16)),
                ('scope', fields.CharField(default='publish', max_length=16)),
                ('restrictions_digest', fields.CharField(default='', max_length=64)),
                ('single_use', fields.BooleanField(default=False)),
                ('job_id', fields.BigIntField(null=True)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('take_down', fields.BooleanField(default=False)),
                ('uri', fields.CharField(null=True, unique=True, max_length=2048)),
                ('document', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('revocation_uri', fields.CharField(null=True, max_length=2048)),
                ('revocation', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('remote', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likeness_grants', 'app': 'fedisora', 'indexes': [Index(fields=['owner_id', 'grantee_id']), Index(fields=['grantee_id', 'id'])], 'pk_attr': 'id', 'table_description': "Consent of an owner for one grantee: the signed consent object's row."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LikenessRequest',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('requester', fields.ForeignKeyField('fedisora.Account', source_field='requester_id', db_constraint=True, to_field='id', related_name='likeness_requests_sent', on_delete=OnDelete.CASCADE)),
                ('owner', fields.ForeignKeyField('fedisora.Account', source_field='owner_id', db_constraint=True, to_field='id', related_name='likeness_requests_received', on_delete=OnDelete.CASCADE)),
                ('state', fields.CharField(default='pending', max_length=16)),
                ('accepted_restrictions', fields.CharField(default='', max_length=64)),
                ('uri', fields.CharField(null=True, max_length=2048)),
                ('grant_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
                ('answered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likeness_requests', 'app': 'fedisora', 'indexes': [Index(fields=['owner_id', 'id']), Index(fields=['requester_id', 'id'])], 'pk_attr': 'id', 'table_description': "Someone asks to use an owner's likeness (local or remote, either side)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LikenessUse',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('fedisora.Account', source_field='owner_id', db_constraint=True, to_field='id', related_name='likeness_uses', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('fedisora.Account', source_field='user_id', db_constraint=True, to_field='id', related_name='likeness_uses_made', on_delete=OnDelete.CASCADE)),
                ('grant', fields.ForeignKeyField('fedisora.LikenessGrant', source_field='grant_id', null=True, db_constraint=True, to_field='id', related_name='uses', on_delete=OnDelete.SET_NULL)),
                ('render_job', fields.ForeignKeyField('fedisora.RenderJob', source_field='render_job_id', null=True, db_constraint=True, to_field='id', related_name='likeness_uses', on_delete=OnDelete.SET_NULL)),
                ('clip', fields.ForeignKeyField('fedisora.Clip', source_field='clip_id', null=True, db_constraint=True, to_field='id', related_name='likeness_uses', on_delete=OnDelete.SET_NULL)),
                ('clip_uri', fields.CharField(null=True, max_length=2048)),
                ('kind', fields.CharField(max_length=16)),
                ('reason', fields.CharField(default='', max_length=500)),
                ('remote', fields.BooleanField(default=False)),
                ('removed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'likeness_uses', 'app': 'fedisora', 'indexes': [Index(fields=['owner_id', 'id']), Index(fields=['render_job_id'])], 'pk_attr': 'id', 'table_description': 'One use of a likeness (a request, a draft, a published clip, a remix, a refusal).'},
            bases=['Model'],
        ),
        AlterFieldState(
            model_name='Notification',
            name='type',
            field=fields.CharEnumField(description='MENTION: mention\nFAVOURITE: favourite\nREBLOG: reblog\nFOLLOW: follow\nFOLLOW_REQUEST: follow_request\nSTATUS: status\nUPDATE: update\nREMIX: fedisora.remix\nLIKENESS_USE: fedisora.likeness_use\nLIKENESS_REQUEST: fedisora.likeness_request\nRENDER_FINISHED: fedisora.render_finished\nRENDER_FAILED: fedisora.render_failed', enum_type=NotificationType, max_length=32),
        ),
    ]
