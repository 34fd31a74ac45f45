"""What a settlement line was matched to: one meaning, read by ``settlement_lines_with_match`` alone."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reconciliation.models import SettlementLine, SettlementMatch
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import order, row, stripe_report

pytestmark = pytest.mark.django_db


def states() -> dict[str, tuple[str, str, str]]:
    return {line.psp_reference or line.record_type: (line.match_state, line.matched_kind, line.matched_object_id)
            for line in settlement_lines_with_match()}


def test_a_line_is_pending_until_its_file_is_reconciled_then_matched_by_reference(tmp_path):
    now = timezone.now().replace(microsecond=0)
    paid = order(amount=1000, psp_reference="pi_paid", completed_at=now - timedelta(hours=1))
    settlement_file_import(path=stripe_report(tmp_path / "day.csv", [
        row("charge", gross=1000, fee=59, pi="pi_paid", created=now),
        row("fee", gross=-50, created=now),
        row("charge", gross=0, gross_text="1O", pi="pi_broken", created=now),
    ]), actor="test")
    assert states() == {"pi_paid": ("pending", "", ""), "fee": ("pending", "", ""),
                        "malformed": ("malformed", "", "")}

    reconciliation_run(day=now.date(), actor="test")
    assert states() == {"pi_paid": ("matched", "payment_order", paid.id), "fee": ("matched", "", ""),
                        "malformed": ("malformed", "", "")}
    # Matched by reference: no row says so, the file's run does.
    assert list(SettlementMatch.objects.values_list("line__record_type", "state")) == [("malformed", "malformed")]


def test_the_default_manager_is_plain():
    sql = str(SettlementLine.objects.all().query)
    assert "payments_settleable_order" not in sql and "match_state" not in sql
