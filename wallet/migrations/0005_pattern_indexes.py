"""Movements keep their idempotency key's unique index only (issue #8): Django adds a varchar_pattern_ops twin
for LIKE 'prefix%' to a unique CharField, which no query of ours asks, and every movement writes it.
core/tests/test_pay_in_indexes.py pins the indexes of the pay-in path's tables."""
from django.db import migrations

LIKE = "wallet_walletmovement_idempotency_key_12405ed7_like"


class Migration(migrations.Migration):

    dependencies = [
        ("wallet", "0004_wallet_negative_since"),
    ]

    operations = [
        migrations.RunSQL(
            f"DROP INDEX IF EXISTS {LIKE};",
            f"CREATE INDEX IF NOT EXISTS {LIKE} ON wallet_walletmovement (idempotency_key varchar_pattern_ops);",
        ),
    ]
