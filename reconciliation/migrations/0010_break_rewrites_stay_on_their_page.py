"""A break seen again by a run is rewritten only in ``last_seen_run``: with that column not indexed and room left
on each page, the rewrite stays on its page (HOT) and adds no entry to the table's other indexes. The fillfactor
holds for pages written from now on."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0009_settled_order'),
    ]

    operations = [
        migrations.AlterField(
            model_name='break',
            name='last_seen_run',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='reconciliation.reconciliationrun'),
        ),
        migrations.RunSQL("ALTER TABLE reconciliation_break SET (fillfactor = 80)",
                          "ALTER TABLE reconciliation_break RESET (fillfactor)"),
    ]
