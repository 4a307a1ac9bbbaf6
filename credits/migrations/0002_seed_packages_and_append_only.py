from django.db import migrations

PACKAGES = [
    # slug, name, credits, price in cents, expires after days (None: never), purchasable
    ("free", "Free", 5, 0, None, False),
    ("starter", "Starter", 30, 1999, 30, True),
    ("pro", "Pro", 200, 5900, 30, True),
    ("premium", "Premium", 500, 12900, None, True),
]


def seed_packages(apps, schema_editor):
    CreditPackage = apps.get_model("credits", "CreditPackage")
    for order, (slug, name, credits, price, days, purchasable) in enumerate(PACKAGES):
        CreditPackage.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "credits": credits,
                "price_cents": price,
                "expires_after_days": days,
                "is_purchasable": purchasable,
                "sort_order": order,
            },
        )


# Ledger rows are append-only: a correction is a new entry, never an edit.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION credits_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER credits_ledger_entry_append_only
    BEFORE UPDATE OR DELETE ON credits_ledger_entry
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();

CREATE TRIGGER credits_ledger_entry_lot_append_only
    BEFORE UPDATE OR DELETE ON credits_ledger_entry_lot
    FOR EACH ROW EXECUTE FUNCTION credits_refuse_change();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS credits_ledger_entry_append_only ON credits_ledger_entry;
DROP TRIGGER IF EXISTS credits_ledger_entry_lot_append_only ON credits_ledger_entry_lot;
DROP FUNCTION IF EXISTS credits_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_initial")]

    operations = [
        migrations.RunPython(seed_packages, migrations.RunPython.noop),
        migrations.RunSQL(APPEND_ONLY_SQL, DROP_APPEND_ONLY_SQL),
    ]
