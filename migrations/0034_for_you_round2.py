# For You, round 2: remixes of a clip found by an index (the remix source of a viewer's
# candidates, fedisora.for_you.candidates), and a view row's impression counted when a page
# served the clip, until the player's own report of it (fedisora.for_you.signals.note_served).
from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0033_follow_previous_uri")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Clip",
            index=Index(fields=["remix_of_id", "id"]),
        ),
        ops.AddField(
            model_name="ClipView",
            name="served",
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
