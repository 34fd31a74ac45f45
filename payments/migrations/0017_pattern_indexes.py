"""Plain btrees only where a query needs one (issue #8: the pay-in path writes these rows on every order).

Django gives an indexed CharField or foreign key to a CharField primary key a second, varchar_pattern_ops
index for LIKE 'prefix%', which no query of ours asks of these columns; and a foreign key an index of its own
where a unique constraint already leads with it. Every index is written with every insert and every update
that changes an indexed column (an order's claim and capture change its state), so they cost each order
without serving a query. The kept indexes are renamed to the names Meta.indexes gives them, not rebuilt.
core/tests/test_pay_in_indexes.py pins the indexes of the pay-in path's tables."""
import django.db.models.deletion
import django_fsm
from django.db import migrations, models


FORWARD = [
    'DROP INDEX IF EXISTS payments_paymentevent_id_b54f72a1_like;',
    'DROP INDEX IF EXISTS payments_paymentevent_client_id_3f88514e_like;',
    'ALTER INDEX payments_paymentevent_client_id_3f88514e RENAME TO payment_event_client;',
    'DROP INDEX IF EXISTS payments_paymentevent_state_6f6f22df_like;',
    'ALTER INDEX payments_paymentevent_state_6f6f22df RENAME TO payment_event_state;',
    'DROP INDEX IF EXISTS payments_paymentorder_id_1e808350_like;',
    'DROP INDEX IF EXISTS payments_paymentorder_state_42d6e139_like;',
    'ALTER INDEX payments_paymentorder_state_42d6e139 RENAME TO payment_order_state;',
    'DROP INDEX IF EXISTS payments_paymentorder_psp_reference_2dd1e2f0_like;',
    'ALTER INDEX payments_paymentorder_psp_reference_2dd1e2f0 RENAME TO payment_order_psp_reference;',
    'DROP INDEX IF EXISTS payments_paymentorder_payment_event_id_d499af55;',
    'DROP INDEX IF EXISTS payments_paymentorder_payment_event_id_d499af55_like;',
    'DROP INDEX IF EXISTS payments_paymentorder_seller_id_44a907df_like;',
    'ALTER INDEX payments_paymentorder_seller_id_44a907df RENAME TO payment_order_seller;',
    'DROP INDEX IF EXISTS payments_paymentordertransition_payment_order_id_c665d729_like;',
    'ALTER INDEX payments_paymentordertransition_payment_order_id_c665d729 RENAME TO order_transition_order;',
    'DROP INDEX IF EXISTS payments_paymenteventtransition_payment_event_id_9f875089_like;',
    'ALTER INDEX payments_paymenteventtransition_payment_event_id_9f875089 RENAME TO event_transition_event;',
    'DROP INDEX IF EXISTS payments_pspcustomer_client_id_2366647a;',
    'DROP INDEX IF EXISTS payments_pspcustomer_client_id_2366647a_like;',
]
REVERSE = [
    'CREATE INDEX IF NOT EXISTS payments_pspcustomer_client_id_2366647a_like ON payments_pspcustomer (client_id varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS payments_pspcustomer_client_id_2366647a ON payments_pspcustomer (client_id);',
    'ALTER INDEX event_transition_event RENAME TO payments_paymenteventtransition_payment_event_id_9f875089;',
    'CREATE INDEX IF NOT EXISTS payments_paymenteventtransition_payment_event_id_9f875089_like ON payments_paymenteventtransition (payment_event_id varchar_pattern_ops);',
    'ALTER INDEX order_transition_order RENAME TO payments_paymentordertransition_payment_order_id_c665d729;',
    'CREATE INDEX IF NOT EXISTS payments_paymentordertransition_payment_order_id_c665d729_like ON payments_paymentordertransition (payment_order_id varchar_pattern_ops);',
    'ALTER INDEX payment_order_seller RENAME TO payments_paymentorder_seller_id_44a907df;',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_seller_id_44a907df_like ON payments_paymentorder (seller_id varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_payment_event_id_d499af55_like ON payments_paymentorder (payment_event_id varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_payment_event_id_d499af55 ON payments_paymentorder (payment_event_id);',
    'ALTER INDEX payment_order_psp_reference RENAME TO payments_paymentorder_psp_reference_2dd1e2f0;',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_psp_reference_2dd1e2f0_like ON payments_paymentorder (psp_reference varchar_pattern_ops);',
    'ALTER INDEX payment_order_state RENAME TO payments_paymentorder_state_42d6e139;',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_state_42d6e139_like ON payments_paymentorder (state varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS payments_paymentorder_id_1e808350_like ON payments_paymentorder (id varchar_pattern_ops);',
    'ALTER INDEX payment_event_state RENAME TO payments_paymentevent_state_6f6f22df;',
    'CREATE INDEX IF NOT EXISTS payments_paymentevent_state_6f6f22df_like ON payments_paymentevent (state varchar_pattern_ops);',
    'ALTER INDEX payment_event_client RENAME TO payments_paymentevent_client_id_3f88514e;',
    'CREATE INDEX IF NOT EXISTS payments_paymentevent_client_id_3f88514e_like ON payments_paymentevent (client_id varchar_pattern_ops);',
    'CREATE INDEX IF NOT EXISTS payments_paymentevent_id_b54f72a1_like ON payments_paymentevent (id varchar_pattern_ops);',
]


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0002_pattern_indexes'),
        ('payments', '0016_refund_reversed_at'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name='paymentevent',
                    name='client',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='payment_events', to='core.apiclient'),
                ),
                migrations.AlterField(
                    model_name='paymentevent',
                    name='state',
                    field=django_fsm.FSMField(choices=[('processing', 'processing (some order is not decided yet)'), ('succeeded', 'succeeded (every order succeeded)'), ('partially_succeeded', 'partially succeeded (some orders succeeded, some failed)'), ('failed', 'failed (no order succeeded, or the succeeded ones were refunded)')], default='processing', max_length=50, protected=True),
                ),
                migrations.AlterField(
                    model_name='paymenteventtransition',
                    name='payment_event',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='payments.paymentevent'),
                ),
                migrations.AlterField(
                    model_name='paymentorder',
                    name='payment_event',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='orders', to='payments.paymentevent'),
                ),
                migrations.AlterField(
                    model_name='paymentorder',
                    name='psp_reference',
                    field=models.CharField(blank=True, max_length=100),
                ),
                migrations.AlterField(
                    model_name='paymentorder',
                    name='seller',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='payment_orders', to='payments.seller'),
                ),
                migrations.AlterField(
                    model_name='paymentorder',
                    name='state',
                    field=django_fsm.FSMField(choices=[('not_started', 'Not Started'), ('executing', 'Executing'), ('pending', 'pending (the PSP is still processing)'), ('unknown', 'unknown (no answer from the PSP; the janitor will ask)'), ('requires_action', 'requires action (the buyer is asked for 3-D Secure)'), ('dead_letter', 'dead letter (retries exhausted; an operator decides)'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='not_started', max_length=50, protected=True),
                ),
                migrations.AlterField(
                    model_name='paymentordertransition',
                    name='payment_order',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='payments.paymentorder'),
                ),
                migrations.AlterField(
                    model_name='pspcustomer',
                    name='client',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='psp_customers', to='core.apiclient'),
                ),
                migrations.AddIndex(
                    model_name='paymentevent',
                    index=models.Index(fields=['client'], name='payment_event_client'),
                ),
                migrations.AddIndex(
                    model_name='paymentevent',
                    index=models.Index(fields=['state'], name='payment_event_state'),
                ),
                migrations.AddIndex(
                    model_name='paymenteventtransition',
                    index=models.Index(fields=['payment_event'], name='event_transition_event'),
                ),
                migrations.AddIndex(
                    model_name='paymentorder',
                    index=models.Index(fields=['state'], name='payment_order_state'),
                ),
                migrations.AddIndex(
                    model_name='paymentorder',
                    index=models.Index(fields=['psp_reference'], name='payment_order_psp_reference'),
                ),
                migrations.AddIndex(
                    model_name='paymentorder',
                    index=models.Index(fields=['seller'], name='payment_order_seller'),
                ),
                migrations.AddIndex(
                    model_name='paymentordertransition',
                    index=models.Index(fields=['payment_order'], name='order_transition_order'),
                ),
            ],
        ),
    ]
