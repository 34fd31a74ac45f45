"""Plain btrees only where a query needs one, for the idempotency record's client (issue #8): see
payments/migrations/0017_pattern_indexes.py for why. core/tests/test_pay_in_indexes.py pins them."""
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
