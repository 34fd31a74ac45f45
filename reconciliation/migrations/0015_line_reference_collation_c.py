"""A settlement line's PSP reference compared byte by byte (collation "C").

Each import inserts a night's lines into the reference index (sorted by reference first, once the index outgrows
the cache: ``services.importing``), and each insert and each probe of matching compares references: under the
database's locale each comparison is a ``strcoll`` and the sort gets no abbreviated keys; under "C" both are a
``memcmp``. The orders' column changes with it (payments 0019), so that joins of lines to orders still probe
either index. PostgreSQL rebuilds the index (no table rewrite) under the ``ALTER TABLE``'s lock, which blocks
imports and runs meanwhile (about a minute at ten nights of a million lines).
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0014_break_fillfactor_half'),
        ('payments', '0019_order_reference_collation_c'),
    ]

    operations = [
        migrations.AlterField(
            model_name='settlementline',
            name='psp_reference',
            field=models.TextField(blank=True, db_collation='C'),
        ),
    ]
