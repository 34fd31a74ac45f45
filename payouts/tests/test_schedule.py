"""The daily payout run and the recovery round are on Celery beat, and the daily task makes today's run."""
import pytest
from django.conf import settings
from django.utils import timezone

from core.tests import loopback
from payouts.models import PayoutRun
from payouts.tasks import payouts_recover_task, payouts_run_daily_task

pytestmark = pytest.mark.django_db


def test_beat_runs_payouts_daily_and_recovers_often():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["payouts-daily"]["task"] == payouts_run_daily_task.name
    assert schedule["payouts-daily"]["schedule"].hour == {6} and schedule["payouts-daily"]["schedule"].minute == {0}
    assert schedule["payouts-recover"] == {"task": payouts_recover_task.name,
                                           "schedule": settings.PAYOUTS_RECOVERY_INTERVAL_SECONDS}


def test_the_daily_task_makes_todays_run():
    run_id = payouts_run_daily_task.apply().get()
    run = PayoutRun.objects.get(pk=run_id)
    assert (run.payout_date, run.actor, run.payouts_created) == (timezone.now().date(), "task:payouts_run_daily", 0)
    assert run.finished_at is not None
    assert payouts_recover_task.apply().get() == 0


def test_the_connect_endpoint_is_registered_at_the_psp(sandbox):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = StringIO()
    call_command("psp_connect_endpoint", "http://127.0.0.1:9/webhooks/psp/connect", stdout=out)
    endpoint_id = out.getvalue().split()[2]
    assert "PSP_CONNECT_WEBHOOK_SECRET=whsec_" in out.getvalue()
    at_psp = loopback.get(f"{sandbox}/v1/webhook_endpoints/{endpoint_id}",
                          headers={"Authorization": "Bearer sk_test_sandbox"}).json()
    assert (at_psp["connect"], at_psp["url"], "secret" in at_psp) == (True, "http://127.0.0.1:9/webhooks/psp/connect",
                                                                      False)
    with pytest.raises(CommandError, match="https://"):
        call_command("psp_connect_endpoint", "ftp://example.com")
