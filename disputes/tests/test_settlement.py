"""Disputes from settlement lines (Stripe ``dispute`` / ``dispute_reversal``, Adyen ``Chargeback``,
``ChargebackReversed``, ``SecondChargeback``): reconciliation matches a line to the dispute it names, opens the
dispute from the line when the webhook has not come yet, and raises a break for what disagrees."""
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from disputes import services
from disputes.models import Dispute, DisputeProblem, DisputeSource, DisputeState
from disputes.postings import reinstated_key, withdrawn_key
from ledger import selectors as ledger_selectors
from payments.services.postings import commission_for
from reconciliation.models import Break
from reconciliation.selectors import settlement_lines_with_match
from reconciliation.services import reconciliation_run, settlement_file_import
from reconciliation.tests.helpers import row, stripe_report
from reconciliation.tests.test_importers import SAMPLES, needs_samples

from .helpers import captured_order, payable, report, wallet

pytestmark = pytest.mark.django_db
ADYEN_HEADER = ("Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,"
                "TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,"
                "Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),"
                "Interchange (NC),Payment Method Variant,Modification Merchant Reference,Batch Number,Reserved4,"
                "Reserved5,Reserved6,Reserved7,Reserved8,Reserved9,Reserved10")


def adyen_line(kind, *, psp, modification, debit="", credit="", net_debit="", net_credit="", commission=""):
    return (f"Co,MerchantCOM,{psp},ref-1,visa,2026-12-01 10:00:00,UTC,{kind},{modification},USD,{debit},{credit},1,"
            f"USD,{net_debit},{net_credit},{commission},,,,visaclassic,,7,,,,,,,")


def adyen_file(path, *lines):
    path.write_text("\n".join([ADYEN_HEADER, *lines]) + "\n")
    return path


def reconcile(path):
    settlement_file_import(path=path, actor="test")
    return reconciliation_run(day=timezone.now().date(), actor="test")


def line_states():
    return sorted((line.record_type, line.match_state, line.matched_kind or "")
                  for line in settlement_lines_with_match()
                  if line.record_type in ("chargeback", "chargeback_reversal"))


def posted(dispute):
    return ledger_selectors.postings_count_by_key(keys=[withdrawn_key(dispute.id), reinstated_key(dispute.id)])


def test_a_stripe_dispute_line_first_opens_the_dispute_and_the_webhook_changes_nothing(tmp_path):
    order = captured_order(10_000, psp_reference="pi_1")
    share = 10_000 - commission_for(10_000)
    now = datetime.now(UTC) - timedelta(hours=1)
    reconcile(stripe_report(tmp_path / "a.csv", [
        row("dispute", gross=-10_000, fee=1500, pi="pi_1", source="dp_1", created=now, payout="po_1")]))
    dispute = Dispute.objects.get()
    assert (dispute.source, dispute.state, dispute.fee, dispute.payment_order_id) == (
        DisputeSource.SETTLEMENT, DisputeState.NEEDS_RESPONSE, 1500, order.id)
    assert line_states() == [("chargeback", "matched", "dispute")]
    assert payable(order.seller_id) == wallet(order.seller_id) == share - 11_500
    services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_1"), actor="webhook:evt_1")
    assert posted(dispute) == {withdrawn_key(dispute.id): 1}
    # Won: the reversal line in the next report gives the money back, once.
    reconcile(stripe_report(tmp_path / "b.csv", [
        row("dispute_reversal", gross=10_000, fee=-1500, pi="pi_1", source="dp_1", created=now, payout="po_2")]))
    dispute = Dispute.objects.get()
    assert dispute.state == DisputeState.WON and posted(dispute) == {withdrawn_key(dispute.id): 1,
                                                                    reinstated_key(dispute.id): 1}
    assert line_states() == [("chargeback", "matched", "dispute"), ("chargeback_reversal", "matched", "dispute")]
    assert payable(order.seller_id) == wallet(order.seller_id) == share
    assert not Break.objects.exists()


def test_the_webhook_first_then_the_line_is_matched_and_books_nothing_more(tmp_path, capsys):
    order = captured_order(10_000, psp_reference="pi_1")
    dispute, _ = services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_1"), actor="webhook")
    now = datetime.now(UTC) - timedelta(hours=1)
    run = reconcile(stripe_report(tmp_path / "a.csv", [
        row("charge", gross=10_000, fee=320, pi="pi_1", created=now, order_id=order.id),
        row("dispute", gross=-10_000, fee=1500, pi="pi_1", source="dp_1", created=now)]))
    assert line_states() == [("chargeback", "matched", "dispute")]
    assert posted(dispute) == {withdrawn_key(dispute.id): 1}
    assert run.stats["fees_booked"] == {"usd": 320}  # the dispute fee is the dispute's, booked once
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_a_line_that_disagrees_is_a_break_and_moves_nothing(tmp_path):
    captured_order(10_000, psp_reference="pi_1")
    captured_order(10_000, psp_reference="pi_2")
    services.dispute_report_apply(report=report("dp_1", psp_payment_reference="pi_1"), actor="webhook")
    services.dispute_report_apply(report=report("dp_2", psp_payment_reference="pi_2", fee=1500), actor="webhook")
    now = datetime.now(UTC) - timedelta(hours=1)
    reconcile(stripe_report(tmp_path / "a.csv", [
        row("dispute", gross=-9_000, fee=1500, pi="pi_1", source="dp_1", created=now),
        row("dispute", gross=-10_000, fee=1000, pi="pi_2", source="dp_2", created=now),
        row("dispute_reversal", gross=10_000, fee=-1500, pi="pi_1", source="dp_1", created=now)]))
    breaks = sorted(Break.objects.values_list("break_class", "object_kind", "description"))
    first, second = (Dispute.objects.get(psp_dispute_id=i) for i in ("dp_1", "dp_2"))
    assert sorted(breaks) == sorted([("amount_mismatch", "dispute", f"dispute {first.id} is 10000 USD"),
                                     ("amount_mismatch", "dispute",
                                      f"dispute {second.id} booked a fee of 1500, the PSP settled 1000")])
    assert second.state == DisputeState.NEEDS_RESPONSE and posted(second) == {withdrawn_key(second.id): 1}
    # The reversal line agrees with dp_1: it is won, whatever its chargeback line said.
    assert first.state == DisputeState.WON and line_states().count(("chargeback_reversal", "matched", "dispute")) == 1


@needs_samples
def test_the_real_adyen_chargeback_of_a_charge_we_do_not_know_is_kept_with_a_break():
    reconcile(SAMPLES / "adyen" / "settlement_detail_report_chargeback.csv")
    dispute = Dispute.objects.get()
    assert (dispute.psp_dispute_id, dispute.amount, dispute.fee, dispute.source) == (
        "4555568869855336", 100, 200, DisputeSource.SETTLEMENT)
    assert dispute.problem == DisputeProblem.UNKNOWN_CHARGE and not dispute.booked
    found = Break.objects.get(object_kind="dispute")
    assert found.break_class == "missing_in_books" and "kept for an operator" in found.description
    assert ledger_selectors.posting_keys_with_prefix(prefix="dispute:") == []


def test_adyen_chargeback_reversed_then_second_chargeback(tmp_path):
    order = captured_order(10_000, psp_reference="8815000000000001")
    share = 10_000 - commission_for(10_000)
    reconcile(adyen_file(tmp_path / "a.csv",
                         adyen_line("Chargeback", psp="8815000000000001", modification="CB1", debit="100.00",
                                    net_debit="102.00", commission="2.00")))
    dispute = Dispute.objects.get()
    assert (dispute.amount, dispute.fee, dispute.state) == (10_000, 200, DisputeState.NEEDS_RESPONSE)
    assert payable(order.seller_id) == share - 10_200
    reconcile(adyen_file(tmp_path / "b.csv",
                         adyen_line("ChargebackReversed", psp="8815000000000001", modification="CB1", credit="100.00",
                                    net_credit="100.00")))
    dispute = Dispute.objects.get()
    assert dispute.state == DisputeState.WON and payable(order.seller_id) == share
    reconcile(adyen_file(tmp_path / "c.csv",
                         adyen_line("SecondChargeback", psp="8815000000000001", modification="CB1", debit="100.00",
                                    net_debit="100.00")))
    second = Break.objects.get(object_kind="dispute")
    assert second.break_class == "missing_in_books" and "SecondChargeback of dispute" in second.description
    assert Dispute.objects.get().state == DisputeState.WON and payable(order.seller_id) == share


def test_a_chargeback_for_more_than_was_captured_is_an_amount_break(tmp_path):
    captured_order(5_000, psp_reference="pi_1")
    now = datetime.now(UTC) - timedelta(hours=1)
    reconcile(stripe_report(tmp_path / "a.csv", [
        row("dispute", gross=-9_000, fee=1500, pi="pi_1", source="dp_1", created=now)]))
    dispute = Dispute.objects.get()
    assert dispute.problem == DisputeProblem.EXCEEDS_CAPTURED and not dispute.booked
    found = Break.objects.get()
    assert found.break_class == "amount_mismatch" and "more than" not in found.description
    assert "9000 but order" in found.description
