# An index on accounts.silenced_at: every public timeline, tag and For You page reads the
# silenced accounts (fedisora.services.visibility.limited_account_ids), a few rows among every
# account the instance has seen; without it each read scanned the whole table.
from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0040_lookup_index")]

    initial = False

    operations = [
        ops.AddIndex(model_name="Account", index=Index(fields=["silenced_at"])),
    ]
