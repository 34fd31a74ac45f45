"""An order's PSP reference names no other order (issue #12): the plain index becomes a partial unique one.

A PaymentIntent is made for one order (its metadata names it; ``payments.services.execution`` refuses a success
that names another, ``PSPMismatch``), so no two orders may share a reference. The database now holds that
rule, and reconciliation relies on it: a settlement line finds at most one order by its reference, so the
night's lines are hash-joined to the orders instead of probing the index once per line. Orders not yet sent
have no reference (``''``): left out of the index.

Built ``CONCURRENTLY`` (the orders table takes writes meanwhile), so the migration is not atomic. It first
refuses, naming them, if orders already share a reference: an operator decides which order keeps it. A build
that failed (a duplicate written while it ran) leaves an invalid index, dropped when the migration runs again.
"""
from django.db import migrations, models

TABLE = "payments_paymentorder"
UNIQUE = "payment_order_one_per_psp_reference"
PLAIN = "payment_order_psp_reference"

#: At most this many shared references are named in the refusal.
SHOWN = 20


def refuse_duplicates(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"""
SELECT psp_reference, array_agg(id ORDER BY id), count(*) OVER ()
FROM {TABLE} WHERE psp_reference <> '' GROUP BY psp_reference HAVING count(*) > 1
ORDER BY psp_reference LIMIT {SHOWN}""")
        rows = cursor.fetchall()
    if rows:
        shared = "; ".join(f"{reference}: {', '.join(ids)}" for reference, ids, _ in rows)
        raise RuntimeError(
            f"payments 0018: {rows[0][2]} PSP references are each held by several payment orders, so the unique "
            f"index {UNIQUE} cannot be built. Give each reference to the one order its PaymentIntent names (the "
            f"others were recorded wrongly), then migrate again. The first {len(rows)}: {shared}")


class Migration(migrations.Migration):

    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('payments', '0017_pattern_indexes'),
    ]

    operations = [
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {UNIQUE}", migrations.RunSQL.noop),
                migrations.RunSQL(
                    f"CREATE UNIQUE INDEX CONCURRENTLY {UNIQUE} ON {TABLE} (psp_reference) WHERE psp_reference <> ''",
                    f"DROP INDEX CONCURRENTLY IF EXISTS {UNIQUE}"),
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {PLAIN}",
                                  f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {PLAIN} ON {TABLE} (psp_reference)"),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name='paymentorder', name=PLAIN),
                migrations.AddConstraint(
                    model_name='paymentorder',
                    constraint=models.UniqueConstraint(condition=models.Q(('psp_reference', ''), _negated=True),
                                                       fields=('psp_reference',), name=UNIQUE),
                ),
            ],
        ),
    ]
