from datetime import UTC, datetime
from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# The chore that asks the owners' servers again about the consents of shown remote clips
# with cameos (fedisora.work.housekeeping, "cameo_recheck"), due at once.
CHORE = "cameo_recheck"


async def seed_chore(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    mark = "$%d" if client.capabilities.dialect == "postgres" else "?"
    values = ", ".join(mark % (i + 1) if "%" in mark else mark for i in range(5))
    now = datetime.now(UTC)
    await client.execute_query(
        "INSERT INTO chores (name, state, state_changed_at, next_attempt_at, created_at, "
        f"attempts, last_error, progress) VALUES ({values}, 0, '', '{{}}') "
        "ON CONFLICT (name) DO NOTHING",
        [CHORE, "due", now, now, now],
    )


async def remove_chore(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    mark = "$1" if client.capabilities.dialect == "postgres" else "?"
    await client.execute_query(f"DELETE FROM chores WHERE name = {mark}", [CHORE])


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0016_signup_reason")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Cameo",
            name="checked_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddIndex(
            model_name="Cameo",
            index=Index(fields=["checked_at"]),
        ),
        ops.RunPython(seed_chore, remove_chore),
    ]
