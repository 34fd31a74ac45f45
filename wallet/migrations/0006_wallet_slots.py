"""Wallet slots (issue #8, a hot seller): credits land in one of a wallet's slots instead of its row. Every
existing wallet gets its 8 (``wallet.services.WALLET_SLOTS``), empty (its balance stays on its row), open unless
it is below zero."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('wallet', '0005_pattern_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='WalletSlot',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('slot', models.PositiveSmallIntegerField()),
                ('balance', models.BigIntegerField(default=0, help_text='Minor units credited here, not yet folded into the row.')),
                ('open', models.BooleanField(default=True, help_text='Whether credits may land here: not while the wallet is below zero (its episode is kept on its row).')),
                ('wallet', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='slots', to='wallet.wallet')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('wallet', 'slot'), name='wallet_slot_one_per_number'), models.CheckConstraint(condition=models.Q(('balance__gte', 0)), name='wallet_slot_credits_only')],
            },
        ),
        migrations.RunSQL(
            "INSERT INTO wallet_walletslot (wallet_id, slot, balance, open)"
            " SELECT w.id, n, 0, w.negative_since IS NULL FROM wallet_wallet w CROSS JOIN generate_series(0, 7) n",
            migrations.RunSQL.noop,
        ),
    ]
