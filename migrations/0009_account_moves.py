import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0008_origin_deletion")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Account",
            name="also_known_as",
            field=fields.JSONField(
                null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
        ops.AddField(
            model_name="Account",
            name="moved_to",
            field=fields.ForeignKeyField(
                "fedisora.Account",
                source_field="moved_to_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="moved_from",
                on_delete=OnDelete.SET_NULL,
            ),
        ),
    ]
