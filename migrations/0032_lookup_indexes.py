# Indexes for lookups every page makes: a clip's hashtags (clip_tags by clip) and who blocked
# an account (blocks by target).
from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0031_admin_appeal_notification")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Block",
            index=Index(fields=["target_id"]),
        ),
        ops.AddIndex(
            model_name="ClipTag",
            index=Index(fields=["clip_id"]),
        ),
    ]
