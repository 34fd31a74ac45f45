"""``payments_settleable_order``: the read-only SQL view through which reconciliation joins
our payment orders against a million settlement lines. Its columns are payments' contract."""
from django.db import migrations

FORWARD = """
CREATE VIEW payments_settleable_order AS
SELECT id, seller_id, psp_reference, amount, currency, state, completed_at
FROM payments_paymentorder;
"""


class Migration(migrations.Migration):
    dependencies = [("payments", "0003_unknown_outcomes_refunds_webhooks")]
    operations = [migrations.RunSQL(FORWARD, "DROP VIEW payments_settleable_order;")]
