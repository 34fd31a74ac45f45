"""A settlement refund line is matched on currency as well as amount: the same amount in another
currency is a ``currency_mismatch`` break, never a match."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.models import Refund, RefundState
from reconciliation.models import Break
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import

from .helpers import order, row, stripe_report

pytestmark = pytest.mark.django_db


def _refund(payment_order, *, amount: int, psp_reference: str) -> Refund:
    return Refund.objects.create(payment_order=payment_order, amount=amount, currency=payment_order.currency,
                                 state=RefundState.SUCCEEDED, psp_reference=psp_reference,
                                 completed_at=payment_order.completed_at)


def test_refund_line_in_another_currency_is_a_currency_mismatch(tmp_path):
    now = timezone.now().replace(microsecond=0)
    before = now - timedelta(hours=2)
    usd = order(amount=1000, psp_reference="pi_usd", completed_at=before)
    other = order(amount=2000, psp_reference="pi_other", completed_at=before)
    right = _refund(usd, amount=300, psp_reference="re_right")
    wrong = _refund(other, amount=500, psp_reference="re_wrong")
    path = stripe_report(tmp_path / "refunds.csv", [
        row("charge", gross=1000, pi="pi_usd", created=before),
        row("charge", gross=2000, pi="pi_other", created=before),
        # Our refund: 300 usd. Control: settled as it is, it matches.
        row("refund", gross=-300, pi="pi_usd", source="re_right", created=before),
        # Our refund: 500 usd. The PSP settled 500 eur: same amount, wrong currency.
        row("refund", gross=-500, currency="eur", pi="pi_other", source="re_wrong", created=before,
            payout="po_eur"),
    ])
    settlement_file_import(path=path, actor="test")

    reconciliation_run(day=now.date(), actor="test")

    lines = {line.source_reference: line for line in settlement_lines_with_match()
             .filter(record_type="refund")}
    assert (lines["re_right"].match_state, lines["re_right"].matched_object_id) == ("matched", right.id)
    assert lines["re_wrong"].match_state == "break"

    brk = Break.objects.get(line=lines["re_wrong"])
    assert (brk.break_class, brk.state) == ("currency_mismatch", "open")
    assert (brk.object_kind, brk.object_id) == ("refund", wrong.id)
    assert (brk.expected_amount, brk.expected_currency) == (500, "usd")
    assert (brk.actual_amount, brk.actual_currency) == (500, "eur")
    assert not Break.objects.filter(line=lines["re_right"]).exists()
    assert not Break.objects.filter(object_id=right.id).exists()
