"""The settled-order marks (``SettledOrder``, 0009) dropped. A run wrote one per charge line it matched (1.7 to
2.2 s a million on a quiet machine; UNLOGGED spared about a third) so that ``missing_in_settlement`` could set the
orders they named aside with one hash, but only a night whose cut-off passes reads them, and a one-night import
paid for them in full (``docs/reconciliation-speed.md``). ``missing_in_settlement`` probes each order of its
window by the settling rule, as it did before them; nothing else read the table, and no break depends on it."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0011_refund_failed_at_psp'),
    ]

    operations = [
        migrations.DeleteModel(name='SettledOrder'),
    ]
