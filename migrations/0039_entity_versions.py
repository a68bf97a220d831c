# Entity versions (issue 20, point 6): raised whenever what a clip's or comment's Status
# entity shows from other rows changes (hashtags, mentions, media), so that the rendering
# cache (fedisora.api.entity_cache) can tell a stale entry from the rows a page reads.
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0038_request_ids")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Clip",
            name="version",
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="Comment",
            name="version",
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
