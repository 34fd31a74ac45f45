"""The table a large file's lines are staged in by the import's second connection (``services.staging``).

``UNLOGGED``: nothing in it outlives the import that wrote it (each import deletes its file's rows, whatever
happens; a server crash empties the table). Its columns are ``settlement_line``'s as the import writes them (file,
ordinal, then ``records.LINE_ROW_FIELDS``), with their types and collations (``psp_reference`` in "C": the import's
sort is then the reference index's order); a column added to the lines' COPY needs one here too. The app role reads,
writes and deletes in it through the default privileges ``core.db_roles`` sets for what migrations create.
"""
from django.db import migrations

_COLUMNS = ("file_id, ordinal, line_number, record_type, raw_type, psp_reference, source_reference, "
            "merchant_reference, payout_reference, currency, gross, fee, net, occurred_at, source_line, error")

_CREATE = f"""
CREATE UNLOGGED TABLE reconciliation_staged_line AS
    SELECT {_COLUMNS} FROM reconciliation_settlementline WITH NO DATA;
CREATE INDEX reconciliation_staged_line_file_ordinal ON reconciliation_staged_line (file_id, ordinal);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0015_line_reference_collation_c'),
    ]

    operations = [
        migrations.RunSQL(_CREATE, reverse_sql="DROP TABLE reconciliation_staged_line"),
    ]
