"""Match results move from settlement_line (wide rows, rewritten by every run) to
settlement_match (one narrow row per evaluated line); files remember their first run and
their fee totals. Existing match states are copied over before the columns go."""

import django.db.models.deletion
from django.db import migrations, models

# A file none of whose lines is still pending, looked at by a run, counts as reconciled and
# its lines keep what runs made of them. The lines of any other file get no match row: the
# next run evaluates them all again (matching is idempotent; breaks are keyed).
COPY_MATCHES = """
UPDATE reconciliation_settlementfile f SET reconciled_at = now()
WHERE EXISTS (SELECT 1 FROM reconciliation_reconciliationrun r WHERE r.started_at > f.imported_at)
  AND NOT EXISTS (SELECT 1 FROM reconciliation_settlementline l WHERE l.file_id = f.id AND l.match_state = 'pending');

INSERT INTO reconciliation_settlementmatch (line_id, state, kind, object_id, run_id)
SELECT l.id, l.match_state, l.matched_kind, l.matched_object_id, (SELECT max(id) FROM reconciliation_reconciliationrun)
FROM reconciliation_settlementline l JOIN reconciliation_settlementfile f ON f.id = l.file_id
WHERE f.reconciled_at IS NOT NULL;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SettlementMatch',
            fields=[
                ('line', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, primary_key=True, related_name='match', serialize=False, to='reconciliation.settlementline')),
                ('state', models.CharField(choices=[('pending', 'pending (not reconciled yet)'), ('matched', 'Matched'), ('break', 'break (see its break)'), ('unrelated', 'unrelated (bank line that is no payout)'), ('malformed', 'Malformed')], max_length=16)),
                ('kind', models.CharField(blank=True, max_length=20)),
                ('object_id', models.CharField(blank=True, max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name='settlementmatch',
            name='run',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reconciliation.reconciliationrun'),
        ),
        migrations.AddField(
            model_name='settlementfile',
            name='fees',
            field=models.JSONField(blank=True, help_text='Fee totals per payout and currency, minor units: [[payout, currency, total, lines], ...]; computed on import.', null=True),
        ),
        migrations.AddField(
            model_name='settlementfile',
            name='reconciled_at',
            field=models.DateTimeField(blank=True, help_text='When a reconciliation run first evaluated every line.', null=True),
        ),
        migrations.RunSQL(COPY_MATCHES, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='settlementline',
            name='settlement_line_matched_obj',
        ),
        migrations.RemoveIndex(
            model_name='settlementline',
            name='settlement_line_open',
        ),
        migrations.RemoveField(
            model_name='settlementline',
            name='match_state',
        ),
        migrations.RemoveField(
            model_name='settlementline',
            name='matched_kind',
        ),
        migrations.RemoveField(
            model_name='settlementline',
            name='matched_object_id',
        ),
        migrations.AlterField(
            model_name='settlementline',
            name='file',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='reconciliation.settlementfile'),
        ),
        migrations.AddIndex(
            model_name='settlementmatch',
            index=models.Index(condition=models.Q(('kind', 'payment_order')), fields=['object_id'], name='settlement_match_order'),
        ),
        migrations.AddIndex(
            model_name='settlementmatch',
            index=models.Index(condition=models.Q(('state__in', ['break', 'unrelated', 'malformed'])), fields=['state'], name='settlement_match_open'),
        ),
        ]
