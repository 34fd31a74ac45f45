"""The payment event's own state (payments/services/checkout_outcome.py) and its audit rows.

Existing events get the state their orders give them now, with their counters and one audit row
per decided event. No refunds are made retroactively, whatever CHECKOUT_ON_PARTIAL_FAILURE says.
Run it with the workers stopped (as every migration here): an order decided by the old code after
this ran would not be counted, and its event would stay processing.
"""

import django.db.models.deletion
import django_fsm
from django.db import migrations, models


DERIVE_STATES = """
UPDATE payments_paymentevent AS e SET
    orders_succeeded = o.succeeded,
    orders_failed = o.failed,
    state = CASE WHEN o.succeeded + o.failed < o.total THEN 'processing'
                 WHEN o.failed = 0 THEN 'succeeded'
                 WHEN o.succeeded = 0 THEN 'failed'
                 ELSE 'partially_succeeded' END,
    completed_at = CASE WHEN o.succeeded + o.failed = o.total THEN o.last_completed END,
    failure_reason = CASE WHEN o.succeeded = 0 AND o.failed = o.total
                          THEN CASE WHEN o.total > 1 THEN 'all ' || o.total || ' orders failed'
                                    ELSE 'the order failed' END
                          ELSE '' END
FROM (SELECT payment_event_id,
             count(*) AS total,
             count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
             count(*) FILTER (WHERE state = 'failed') AS failed,
             coalesce(max(completed_at), max(updated_at)) AS last_completed
      FROM payments_paymentorder GROUP BY payment_event_id) AS o
WHERE o.payment_event_id = e.id;

INSERT INTO payments_paymenteventtransition (payment_event_id, from_state, to_state, actor, reason, created_at)
SELECT id, 'processing', state, 'migration:0009_payment_event_state',
       'derived from its orders when the event state was introduced', now()
FROM payments_paymentevent WHERE state <> 'processing';
"""


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0008_webhook_reprocess_permission'),
    ]

    operations = [
        migrations.AddField(
            model_name='paymentevent',
            name='completed_at',
            field=models.DateTimeField(blank=True, db_index=True, help_text='When every order was decided (and the event with them).', null=True),
        ),
        migrations.AddField(
            model_name='paymentevent',
            name='failure_reason',
            field=models.CharField(blank=True, help_text='Why the event failed.', max_length=500),
        ),
        migrations.AddField(
            model_name='paymentevent',
            name='orders_failed',
            field=models.PositiveIntegerField(default=0, help_text='Orders failed so far.'),
        ),
        migrations.AddField(
            model_name='paymentevent',
            name='orders_succeeded',
            field=models.PositiveIntegerField(default=0, help_text='Orders succeeded so far.'),
        ),
        migrations.AddField(
            model_name='paymentevent',
            name='state',
            field=django_fsm.FSMField(choices=[('processing', 'processing (some order is not decided yet)'), ('succeeded', 'succeeded (every order succeeded)'), ('partially_succeeded', 'partially succeeded (some orders succeeded, some failed)'), ('failed', 'failed (no order succeeded, or the succeeded ones were refunded)')], db_index=True, default='processing', max_length=50, protected=True),
        ),
        migrations.CreateModel(
            name='PaymentEventTransition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('from_state', models.CharField(max_length=32)),
                ('to_state', models.CharField(max_length=32)),
                ('actor', models.CharField(help_text='Whoever decided the order that decided the event.', max_length=100)),
                ('reason', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('payment_event', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='transitions', to='payments.paymentevent')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.RunSQL(DERIVE_STATES, reverse_sql=migrations.RunSQL.noop),
    ]
