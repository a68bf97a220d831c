# Per-account render quota overrides, set by an admin on /admin/renders
# (render.service.set_quota_override); None keeps the instance's setting.
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0024_roles")]

    initial = False

    operations = [
        ops.AddField(
            model_name="RenderQuotaGuard",
            name="concurrent_jobs",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="RenderQuotaGuard",
            name="clips_per_day",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="RenderQuotaGuard",
            name="gpu_seconds_per_day",
            field=fields.FloatField(null=True),
        ),
    ]
