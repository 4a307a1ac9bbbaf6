"""Fewer indexes on the ledger tables: every spend and every expired lot pays for each.

- `idempotency_key` and `grant_key` stay unique, now as named UniqueConstraints: the
  existing unique constraints are renamed (no rebuild, never a moment without them) and
  the varchar_pattern_ops twins Django adds for unique=True (used by no query) dropped.
- entry.user_id is served by credits_entry_by_user (user_id, created_at, id), and
  entry_lot.entry_id by credits_entry_lot_unique (entry_id, lot_id): their own
  single-column indexes go.
- entry.staff_user_id: a partial index over the few entries that have one.

The database side is plain SQL so that the foreign keys are left alone (an AlterField
would drop and re-validate them, scanning the whole ledger).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def unique_to_constraint(table, column, like_index, constraint):
    """`unique=True` on `column` becomes UniqueConstraint `constraint`, keeping its index."""
    return migrations.RunSQL(
        sql=[
            f"DROP INDEX IF EXISTS {like_index}",
            f"ALTER TABLE {table} RENAME CONSTRAINT {table}_{column}_key TO {constraint}",
        ],
        reverse_sql=[
            f"ALTER TABLE {table} RENAME CONSTRAINT {constraint} TO {table}_{column}_key",
            f"CREATE INDEX {like_index} ON {table} ({column} varchar_pattern_ops)",
        ],
    )


def drop_fk_index(table, column, index):
    """Drop the index Django made for a foreign key (db_index=True), keeping the key."""
    return migrations.RunSQL(
        sql=f"DROP INDEX IF EXISTS {index}",
        reverse_sql=f"CREATE INDEX {index} ON {table} ({column})",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0003_adjust_permission"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                unique_to_constraint(
                    "credits_lot",
                    "grant_key",
                    "credits_lot_grant_key_a9c3ed3a_like",
                    "credits_lot_grant_key_unique",
                ),
                unique_to_constraint(
                    "credits_ledger_entry",
                    "idempotency_key",
                    "credits_ledger_entry_idempotency_key_0574b497_like",
                    "credits_entry_idempotency_key_unique",
                ),
                drop_fk_index(
                    "credits_ledger_entry", "user_id", "credits_ledger_entry_user_id_719db89f"
                ),
                drop_fk_index(
                    "credits_ledger_entry_lot",
                    "entry_id",
                    "credits_ledger_entry_lot_entry_id_546c757e",
                ),
                drop_fk_index(
                    "credits_ledger_entry",
                    "staff_user_id",
                    "credits_ledger_entry_staff_user_id_3fccec12",
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="creditlot",
                    name="grant_key",
                    field=models.CharField(max_length=200),
                ),
                migrations.AddConstraint(
                    model_name="creditlot",
                    constraint=models.UniqueConstraint(
                        fields=("grant_key",), name="credits_lot_grant_key_unique"
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="idempotency_key",
                    field=models.CharField(max_length=200),
                ),
                migrations.AddConstraint(
                    model_name="ledgerentry",
                    constraint=models.UniqueConstraint(
                        fields=("idempotency_key",), name="credits_entry_idempotency_key_unique"
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="user",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentrylot",
                    name="entry",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="lot_links",
                        to="credits.ledgerentry",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="staff_user",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("staff_user__isnull", False)),
                fields=["staff_user"],
                name="credits_entry_by_staff",
            ),
        ),
    ]
