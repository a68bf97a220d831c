# The prompt policy's protected names (fedisora.services.prompt_policy).
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from fedisora.models import PolicyList, PolicySource, utcnow


class Migration(migrations.Migration):
    dependencies = [("fedisora", "0018_audit_log")]

    initial = False

    operations = [
        ops.CreateModel(
            name="PolicyTerm",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "list_name",
                    fields.CharEnumField(
                        description="PUBLIC_FIGURE: public_figure\nPROTECTED_WORK: protected_work",
                        enum_type=PolicyList,
                        max_length=32,
                    ),
                ),
                ("term", fields.CharField(max_length=200)),
                ("key", fields.CharField(max_length=400)),
                ("note", fields.CharField(default="", max_length=1000)),
                (
                    "source",
                    fields.CharEnumField(
                        default=PolicySource.ADMIN,
                        description="ADMIN: admin\nOPTOUT: optout",
                        enum_type=PolicySource,
                        max_length=16,
                    ),
                ),
                ("source_ref", fields.CharField(default="", max_length=1024)),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "fedisora.Account",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "created_at",
                    fields.DatetimeField(default=utcnow, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "policy_terms",
                "app": "fedisora",
                "indexes": [
                    Index(fields=["list_name", "key"]),
                    Index(fields=["source", "source_ref"]),
                ],
                "pk_attr": "id",
                "table_description": (
                    "A name the prompt policy protects: a public figure, a character or a work."
                ),
            },
            bases=["Model"],
        ),
    ]
