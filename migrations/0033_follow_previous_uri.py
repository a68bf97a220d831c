# A follow's previous ActivityPub id: a peer that follows again (it lost its state, or our
# Accept was lost) sends a Follow with a new id; the stored id becomes the new one, as on
# Mastodon, and an Undo of either id still ends the follow.
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0032_lookup_indexes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Follow",
            name="previous_uri",
            field=fields.CharField(max_length=2048, null=True),
        ),
    ]
