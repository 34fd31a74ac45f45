"""Lean settlement lines: no foreign-key check and no (file, ordinal) index per line (a BRIN
index on the file finds a file's lines; a partial index the few lines matching reads one by
one); a file remembers the run that reconciled it, and a line matched by PSP reference in
that run needs no SettlementMatch row. Files reconciled before this keep the rows they have,
one per line."""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0002_settlement_match'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='settlementline',
            name='settlement_line_unique_ordinal',
        ),
        migrations.AddField(
            model_name='settlementfile',
            name='reconciled_run',
            field=models.ForeignKey(blank=True, help_text='The run that first evaluated every line.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='files', to='reconciliation.reconciliationrun'),
        ),
        migrations.AddField(
            model_name='settlementfile',
            name='unique_references',
            field=models.BooleanField(blank=True, help_text='No two lines share a PSP reference (checked on import of a plain Stripe report; empty: not checked). Matching looks for duplicates within a file only when this is not true.', null=True),
        ),
        migrations.AlterField(
            model_name='settlementline',
            name='file',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='reconciliation.settlementfile'),
        ),
        migrations.AddIndex(
            model_name='settlementline',
            index=django.contrib.postgres.indexes.BrinIndex(fields=['file'], name='settlement_line_file_brin'),
        ),
        migrations.AddIndex(
            model_name='settlementline',
            index=models.Index(condition=models.Q(('record_type__in', ['refund', 'payout', 'bank_credit', 'bank_debit', 'malformed'])), fields=['file'], name='settlement_line_file_other'),
        ),
    ]
