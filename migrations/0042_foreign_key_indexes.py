# Indexes for rows read by a foreign key that PostgreSQL does not index by itself: without them
# each of these reads scanned its whole table (found by reading the query plans of the pages,
# the client API and deletions on PostgreSQL).
# - mentions by clip and by comment: a status's entity, page and deletion;
# - timeline entries by clip: a clip's deletion and an unboost remove its entries from every
#   home feed (the index on (owner_id, clip_id) repeated the unique constraint's and goes);
# - notifications by the account that caused them, media files and access tokens by account:
#   an account's deletion, its authorised apps, a new password revoking its tokens;
# - likes by target, newest first: who liked a clip or a comment;
# - mutes by target (who muted an account: streams, its deletion), authorization codes by
#   account.
from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0041_silenced_index")]

    initial = False

    operations = [
        ops.AddIndex(model_name="MediaFile", index=Index(fields=["account_id"])),
        ops.AddIndex(model_name="Like", index=Index(fields=["target_key", "id"])),
        ops.AddIndex(model_name="Mention", index=Index(fields=["clip_id"])),
        ops.AddIndex(model_name="Mention", index=Index(fields=["comment_id"])),
        ops.AddIndex(model_name="Mute", index=Index(fields=["target_id"])),
        ops.AddIndex(model_name="Notification", index=Index(fields=["from_account_id"])),
        ops.AddIndex(model_name="OAuthAuthorizationCode", index=Index(fields=["account_id"])),
        ops.AddIndex(model_name="OAuthAccessToken", index=Index(fields=["account_id"])),
        ops.RemoveIndex(model_name="TimelineEntry", name=None, fields=["owner_id", "clip_id"]),
        ops.AddIndex(model_name="TimelineEntry", index=Index(fields=["clip_id"])),
    ]
