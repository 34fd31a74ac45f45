"""A break's owner and its notes; notes are append-only in PostgreSQL itself, like the ledger."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


APPEND_ONLY = r"""
CREATE FUNCTION reconciliation_break_note_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'break notes are append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation', HINT = 'Write another note instead.';
END $$;
CREATE TRIGGER reconciliation_breaknote_append_only BEFORE UPDATE OR DELETE ON reconciliation_breaknote
    FOR EACH ROW EXECUTE FUNCTION reconciliation_break_note_refuse_change();
"""

APPEND_ONLY_REVERSE = r"""
DROP TRIGGER reconciliation_breaknote_append_only ON reconciliation_breaknote;
DROP FUNCTION reconciliation_break_note_refuse_change();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('reconciliation', '0006_money_out_lines'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='reconciliationrun',
            options={'ordering': ['-started_at', '-id'], 'permissions': [('run_reconciliation', 'Can reconcile a day again from the console')]},
        ),
        migrations.AlterModelOptions(
            name='break',
            options={'ordering': ['-created_at', '-id'], 'permissions': [('resolve_break', 'Can resolve reconciliation breaks'), ('work_break', 'Can assign reconciliation breaks and write notes on them')]},
        ),
        migrations.AddField(
            model_name='break',
            name='owner',
            field=models.ForeignKey(blank=True, help_text='The operator working it (each change is a note).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.CreateModel(
            name='BreakNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('note', 'Note'), ('owner', 'owner changed')], default='note', max_length=16)),
                ('text', models.TextField()),
                ('actor', models.CharField(help_text='operator:<username>', max_length=100)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('brk', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='notes', to='reconciliation.break', verbose_name='break')),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, APPEND_ONLY_REVERSE),
    ]
