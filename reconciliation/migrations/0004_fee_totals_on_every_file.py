"""Every settlement file holds its fee totals. Files imported before 0002 had none (``fees`` NULL) and
matching summed them from their lines at each run; they are summed here once, by the rule the import
applies (``reconciliation.importers.fees``: a line's fee, plus a fee row's own negative net; payout,
bank and malformed lines bear none), and the column is no longer nullable."""

from django.db import migrations, models

FILL_FEES = """
UPDATE reconciliation_settlementfile f SET fees = COALESCE((
    SELECT jsonb_agg(jsonb_build_array(totals.payout_reference, totals.currency, totals.total, totals.lines)
                     ORDER BY totals.payout_reference COLLATE "C", totals.currency COLLATE "C")
    FROM (
        SELECT line.payout_reference, line.currency, count(*) AS lines,
               SUM(COALESCE(line.fee, 0) + CASE WHEN line.record_type = 'fee' THEN -line.net ELSE 0 END)::bigint
               AS total
        FROM reconciliation_settlementline line
        WHERE line.file_id = f.id AND line.record_type NOT IN ('payout', 'bank_credit', 'bank_debit', 'malformed')
        GROUP BY 1, 2
    ) totals), '[]'::jsonb)
WHERE f.fees IS NULL
"""


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0003_lean_lines'),
    ]

    operations = [
        migrations.RunSQL(FILL_FEES, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name='settlementfile',
            name='fees',
            field=models.JSONField(blank=True, default=list, help_text='Fee totals per payout and currency, minor units: [[payout, currency, total, lines], ...]; computed on import.'),
        ),
    ]
