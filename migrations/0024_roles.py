# Moderators (User.is_moderator) and the admins' one-time password reset links
# (fedisora.services.roles, fedisora.services.password_resets).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0023_domain_blocks")]

    initial = False

    operations = [
        ops.AddField(
            model_name="User",
            name="is_moderator",
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.CreateModel(
            name="PasswordReset",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "fedisora.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="password_resets",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "password_resets",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "A one-time link an admin made for a user to set a new password."
                ),
            },
            bases=["Model"],
        ),
    ]
