# Domain blocks and allows, and users' own domain blocks (fedisora.services.domain_blocks).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from fedisora.models import DomainSeverity, utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0022_invites")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AccountDomainBlock",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "account",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="domain_blocks",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("domain", fields.CharField(max_length=255)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "account_domain_blocks",
                "app": "fedisora",
                "unique_together": (("account", "domain"),),
                "pk_attr": "id",
                "table_description": (
                    "A user's own block of a domain: its accounts are hidden from that user."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DomainAllow",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("domain", fields.CharField(unique=True, max_length=255)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "domain_allows",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "A domain that federates in limited-federation mode "
                    "(``FEDISORA_LIMITED_FEDERATION``)."
                ),
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DomainBlock",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("domain", fields.CharField(unique=True, max_length=255)),
                (
                    "severity",
                    fields.CharEnumField(
                        default=DomainSeverity.SILENCE,
                        description="SILENCE: silence\nSUSPEND: suspend\nNOOP: noop",
                        enum_type=DomainSeverity,
                        max_length=16,
                    ),
                ),
                ("reject_media", fields.BooleanField(default=False)),
                ("reject_reports", fields.BooleanField(default=False)),
                ("private_comment", fields.TextField(default="", unique=False)),
                ("public_comment", fields.TextField(default="", unique=False)),
                ("obfuscate", fields.BooleanField(default=False)),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
                (
                    "updated_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "domain_blocks",
                "app": "fedisora",
                "pk_attr": "id",
                "table_description": (
                    "An instance-wide block of a remote domain and its subdomains."
                ),
            },
            bases=["Model"],
        ),
    ]
