# Work rows carry the X-Request-Id of the request that caused them (issue 20, point 4): one id
# links a request and the work it caused in the logs (fedisora.logs, fedisora.work.engine).
from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from fedisora.models import current_request_id


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0037_fingerprints")]

    initial = False

    operations = [
        ops.AddField(
            model_name="CameoCheck",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="Chore",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="Delivery",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="Fingerprint",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="ForYouRefresh",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="InboxItem",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="ModelPull",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="OutboxEvent",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="OutgoingMail",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="QuoteCheck",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="RemoteMediaCheck",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
        ops.AddField(
            model_name="RenderJob",
            name="request_id",
            field=fields.CharField(null=True, default=current_request_id, max_length=64),
        ),
    ]
