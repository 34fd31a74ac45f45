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
    'DROP INDEX IF EXISTS core_idempotencyrecord_client_id_3bbaeec5;',
    'DROP INDEX IF EXISTS core_idempotencyrecord_client_id_3bbaeec5_like;',
]
REVERSE = [
    'CREATE INDEX IF NOT EXISTS core_idempotencyrecord_client_id_3bbaeec5_like ON core_idempotencyrecord (client_id varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS core_idempotencyrecord_client_id_3bbaeec5 ON core_idempotencyrecord (client_id);',
]


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name='idempotencyrecord',
                    name='client',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='core.apiclient'),
                ),
            ],
        ),
    ]
