"""Plain btrees only where a query needs one (issue #8: the pay-in path writes these rows on every order).

Django gives an indexed CharField or foreign key to a CharField primary key a second, varchar_pattern_ops
index for LIKE 'prefix%', which no query of ours asks of these columns; and a foreign key an index of its own
where a unique constraint already leads with it. Every index is written with every insert and every update
that changes an indexed column (an order's claim and capture change its state), so they cost each order
without serving a query. The kept indexes are renamed to the names Meta.indexes gives them, not rebuilt.
core/tests/test_pay_in_indexes.py pins the indexes of the pay-in path's tables."""
import django.db.models.deletion
from django.db import migrations, models


FORWARD = [
    'DROP INDEX IF EXISTS ledger_entry_account_id_e9f5e345;',
    'DROP INDEX IF EXISTS ledger_ledgertransaction_reference_98b5ef62_like;',
    'ALTER INDEX ledger_ledgertransaction_reference_98b5ef62 RENAME TO ledger_transaction_reference;',
]
REVERSE = [
    'ALTER INDEX ledger_transaction_reference RENAME TO ledger_ledgertransaction_reference_98b5ef62;',
    'CREATE INDEX IF NOT EXISTS ledger_ledgertransaction_reference_98b5ef62_like ON ledger_ledgertransaction (reference varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS ledger_entry_account_id_e9f5e345 ON ledger_entry (account_id);',
]


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0002_append_only_and_balanced'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name='entry',
                    name='account',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='ledger.account'),
                ),
                migrations.AlterField(
                    model_name='ledgertransaction',
                    name='reference',
                    field=models.CharField(blank=True, help_text='The business object posted, e.g. a payment order id.', max_length=100),
                ),
                migrations.AddIndex(
                    model_name='ledgertransaction',
                    index=models.Index(fields=['reference'], name='ledger_transaction_reference'),
                ),
            ],
        ),
    ]
