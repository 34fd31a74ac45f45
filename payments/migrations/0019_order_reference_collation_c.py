"""An order's PSP reference compared byte by byte (collation "C"), as settlement lines' references are.

Reconciliation probes the orders' reference index with settlement lines' references and the lines' reference
index with orders' (``reconciliation.matching``); an index serves a comparison only in its own collation, and
the comparison of two columns takes the one that is not the database's default. So the lines' column
(reconciliation 0015, which depends on this one) and this one change together. References are ASCII ids: their
equality is the same in every deterministic collation, and under the ``C.UTF-8`` databases here their order too.

The view ``payments_settleable_order`` (0004) reads the column, so it is dropped and made again around the
change (its read-only grants are the app role's again after ``manage.py db_roles``, which ``make migrate`` runs
after ``migrate``, as for the view 0004 made). PostgreSQL does not rewrite the table for a collation change, but
rebuilds the column's index (``payment_order_one_per_psp_reference``) under the ``ALTER TABLE``'s lock: seconds
at ten million orders, during which no order is written; run it at a quiet time.
"""
from django.db import migrations, models

VIEW = """
CREATE VIEW payments_settleable_order AS
SELECT id, seller_id, psp_reference, amount, currency, state, completed_at
FROM payments_paymentorder;
"""
DROP_VIEW = "DROP VIEW payments_settleable_order;"


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0018_psp_reference_unique'),
    ]

    operations = [
        migrations.RunSQL(DROP_VIEW, VIEW),
        migrations.AlterField(
            model_name='paymentorder',
            name='psp_reference',
            field=models.CharField(blank=True, db_collation='C', max_length=100),
        ),
        migrations.RunSQL(VIEW, DROP_VIEW),
    ]
