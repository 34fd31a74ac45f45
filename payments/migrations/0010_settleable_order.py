"""``SettleableOrder``: the model over the read-only view ``payments_settleable_order`` (0004), so that
reconciliation reads it through a selector with the ORM. Unmanaged: this creates nothing in the database."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0009_payment_event_state'),
    ]

    operations = [
        migrations.CreateModel(
            name='SettleableOrder',
            fields=[
                ('id', models.CharField(max_length=40, primary_key=True, serialize=False)),
                ('seller_id', models.CharField(max_length=40)),
                ('psp_reference', models.CharField(blank=True, max_length=100)),
                ('amount', models.BigIntegerField(help_text='Minor units.')),
                ('currency', models.CharField(max_length=3)),
                ('state', models.CharField(help_text='A PaymentOrderState value.', max_length=32)),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'db_table': 'payments_settleable_order',
                'managed': False,
            },
        ),
    ]
