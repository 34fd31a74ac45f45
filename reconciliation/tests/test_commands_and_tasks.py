"""The reconcile command and the nightly task (inbox import + reconcile), and its beat entry."""
from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from reconciliation.models import Break, ReconciliationRun, SettlementFile
from reconciliation.tasks import reconciliation_nightly

from .helpers import order, row, stripe_report
from .test_importers import SAMPLES, needs_samples

pytestmark = pytest.mark.django_db


def test_reconcile_command_prints_counts_per_class(tmp_path, capsys):
    now = timezone.now()
    order(amount=2000, psp_reference="pi_a", completed_at=now - timedelta(hours=1))
    stripe_report(tmp_path / "s.csv", [row("charge", gross=1999, fee=88, pi="pi_a", created=now)])
    call_command("import_settlement", str(tmp_path / "s.csv"))
    call_command("reconcile", "--date", now.date().isoformat())
    out = capsys.readouterr().out
    assert "amount_mismatch" in out and "count=1 new=1 open=1 amounts=[-1 usd]" in out
    with pytest.raises(CommandError):
        call_command("reconcile", "--date", "27/11/2026")


@needs_samples
def test_nightly_task_imports_new_inbox_files_and_reconciles(tmp_path, settings):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "stripe/payout_reconciliation_itemized.csv", inbox / "a.csv")
    shutil.copy(SAMPLES / "camt053/valid_example.xml", inbox / "b.xml")
    (inbox / "c.txt").write_text("not a statement\n")
    settings.RECONCILIATION_INBOX_DIR = inbox

    first = reconciliation_nightly.apply(kwargs={"day": "2026-01-30"}).get()
    assert first["imported"] == ["a.csv", "b.xml"] and list(first["failed"]) == ["c.txt"]
    breaks = Break.objects.count()
    assert breaks > 0  # the sample's charges are nobody's orders here

    second = reconciliation_nightly.apply(kwargs={"day": "2026-01-30"}).get()
    assert second["imported"] == [] and second["skipped"] == ["a.csv", "b.xml"]
    assert SettlementFile.objects.count() == 2 and Break.objects.count() == breaks
    assert ReconciliationRun.objects.count() == 2


def test_beat_runs_the_nightly_task():
    entry = settings.CELERY_BEAT_SCHEDULE["reconciliation-nightly"]
    assert entry["task"] == reconciliation_nightly.name == "reconciliation.nightly"
