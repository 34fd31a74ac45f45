"""Plain btrees only where a query needs one, for the entry's account and the transaction's reference (issue #8): see
payments/migrations/0017_pattern_indexes.py for why. core/tests/test_pay_in_indexes.py pins them."""
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
