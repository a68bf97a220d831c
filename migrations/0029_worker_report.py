# What a runner says of itself in its heartbeat (fedisora.work.runner.worker_report): a render
# worker's model and device, with GPU memory where it has a GPU (render.worker_report). NULL
# for runners with nothing to report, and for the rows of workers from before this column.
import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0028_instance_settings")]

    initial = False

    operations = [
        ops.AddField(
            model_name="WorkerHeartbeat",
            name="report",
            field=fields.JSONField(
                null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
    ]
