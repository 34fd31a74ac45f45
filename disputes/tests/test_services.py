"""Each state of a dispute and its money: opened (withdrawn from the seller), under review, won (given back),
lost (kept), reported again, out of order, by either source; the fee payer; what is kept for an operator."""
import threading
from datetime import timedelta

import pytest
from django.db import connection

from disputes import services
from disputes.exceptions import DisputeExceedsCaptured, DisputeUnknownCharge
from disputes.models import Dispute, DisputeProblem, DisputeSource, DisputeState
from disputes.postings import reinstated_key, withdrawn_key
from ledger import accounts
from ledger import selectors as ledger_selectors
from payments.models import PaymentOrderState
from payments.services.postings import commission_for
from payments.tests.factories import PaymentOrderFactory
from wallet.models import WalletMovement

from .helpers import captured_order, payable, receivable, report, wallet

pytestmark = pytest.mark.django_db

NEEDS, REVIEW, WON, LOST = (DisputeState.NEEDS_RESPONSE, DisputeState.UNDER_REVIEW, DisputeState.WON,
                            DisputeState.LOST)


def apply(rep, actor="test"):
    return services.dispute_report_apply(report=rep, actor=actor)


def postings(dispute):
    return ledger_selectors.postings_count_by_key(keys=[withdrawn_key(dispute.id), reinstated_key(dispute.id)])


def test_an_opened_dispute_takes_the_amount_and_fee_from_the_seller_in_one_posting():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    dispute, created = apply(report(amount=10_000, fee=1500))
    assert created and dispute.state == NEEDS and dispute.booked and not dispute.problem
    assert dispute.payment_order_id == order.id and dispute.seller_id == order.seller_id
    assert dispute.fee_payer == "seller"
    assert payable(order.seller_id) == share - 11_500
    assert wallet(order.seller_id) == share - 11_500  # negative: allowed (netting is the payouts' business)
    assert receivable() == 10_000 - 11_500
    assert postings(dispute) == {withdrawn_key(dispute.id): 1}
    assert [(t.from_state, t.to_state) for t in dispute.transitions.all()] == [("", NEEDS)]


def test_the_platform_bears_the_fee_when_the_setting_says_so(settings):
    settings.DISPUTE_FEE_PAYER = "platform"
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    dispute, _ = apply(report(amount=4_000, fee=1500))
    assert dispute.fee_payer == "platform"
    assert payable(order.seller_id) == share - 4_000 and wallet(order.seller_id) == share - 4_000
    assert ledger_selectors.account_balance(code=accounts.DISPUTE_FEES, currency="usd") == 1500
    apply(report(amount=4_000, fee=1500, state=WON))
    assert ledger_selectors.account_balance(code=accounts.DISPUTE_FEES, currency="usd") == 0
    assert payable(order.seller_id) == share and wallet(order.seller_id) == share


def test_won_gives_the_money_back_and_lost_keeps_it():
    order = captured_order(10_000, psp_reference="pi_a")
    captured_order(10_000, psp_reference="pi_b", seller=order.seller,
                   payment_event__client=order.payment_event.client)
    share = 2 * (10_000 - commission_for(10_000))
    won, _ = apply(report("dp_won", psp_payment_reference="pi_a"))
    lost, _ = apply(report("dp_lost", psp_payment_reference="pi_b"))
    apply(report("dp_won", psp_payment_reference="pi_a", state=REVIEW))
    apply(report("dp_lost", psp_payment_reference="pi_b", state=REVIEW))
    won, _ = apply(report("dp_won", psp_payment_reference="pi_a", state=WON))
    lost, _ = apply(report("dp_lost", psp_payment_reference="pi_b", state=LOST))
    assert (won.state, lost.state) == (WON, LOST)
    assert won.reinstated_at and lost.reinstated_at is None and won.closed_at and lost.closed_at
    assert postings(won) == {withdrawn_key(won.id): 1, reinstated_key(won.id): 1}
    assert postings(lost) == {withdrawn_key(lost.id): 1}
    assert payable(order.seller_id) == wallet(order.seller_id) == share - 11_500
    assert [(t.from_state, t.to_state) for t in won.transitions.all()] == [("", NEEDS), (NEEDS, REVIEW),
                                                                            (REVIEW, WON)]


def test_repeated_and_out_of_order_reports_book_once():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    first, created = apply(report(state=WON))  # closed arrives first: opened and won at once
    assert created and first.state == WON
    for state in (NEEDS, REVIEW, WON, NEEDS, LOST):  # late created/updated, a repeat, a contradiction
        dispute, created = apply(report(state=state))
        assert not created and dispute.state == WON
    assert postings(dispute) == {withdrawn_key(dispute.id): 1, reinstated_key(dispute.id): 1}
    assert payable(order.seller_id) == wallet(order.seller_id) == share
    assert WalletMovement.objects.filter(idempotency_key__startswith=f"dispute:{dispute.id}:").count() == 2


def test_a_settlement_line_first_then_the_webhook_changes_nothing():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    dispute, _ = apply(report(source=DisputeSource.SETTLEMENT, fee=1500))
    again, created = apply(report(source=DisputeSource.WEBHOOK, fee=1500, state=REVIEW))
    assert not created and again.pk == dispute.pk and again.state == REVIEW and again.source == "settlement"
    assert payable(order.seller_id) == share - 11_500
    assert postings(dispute) == {withdrawn_key(dispute.id): 1}


def test_a_dispute_on_an_unknown_charge_is_kept_and_moves_no_money():
    dispute, _ = apply(report(psp_payment_reference="pi_nobody", psp_charge_id="ch_nobody"))
    assert dispute.problem == DisputeProblem.UNKNOWN_CHARGE and not dispute.booked
    assert dispute.payment_order_id is None and "no payment order of ours" in dispute.problem_detail
    apply(report(psp_payment_reference="pi_nobody", state=WON))
    assert Dispute.objects.get(pk=dispute.pk).state == WON
    assert postings(dispute) == {} and receivable() == 0
    with pytest.raises(DisputeUnknownCharge):
        services.dispute_book_retry(dispute_id=dispute.id, actor="operator:alice")


def test_a_dispute_for_more_than_was_captured_is_refused_and_kept():
    order = captured_order(10_000)
    order.amount_refunded = 3_000  # a refund of 3000 reserved or paid
    order.save(update_fields=["amount_refunded"])
    dispute, _ = apply(report(amount=8_000))
    assert dispute.problem == DisputeProblem.EXCEEDS_CAPTURED and not dispute.booked
    assert dispute.payment_order_id == order.id
    assert "8000" in dispute.problem_detail and "7000 left" in dispute.problem_detail
    assert postings(dispute) == {}
    with pytest.raises(DisputeExceedsCaptured):
        services.dispute_book_retry(dispute_id=dispute.id, actor="operator:alice")


def test_a_second_dispute_counts_the_first():
    captured_order(10_000)
    first, _ = apply(report("dp_1", amount=6_000))
    second, _ = apply(report("dp_2", amount=6_000))
    assert first.booked and second.problem == DisputeProblem.EXCEEDS_CAPTURED


def test_not_captured_or_in_another_currency_is_kept():
    PaymentOrderFactory(state=PaymentOrderState.FAILED, psp_reference="pi_failed")
    failed, _ = apply(report("dp_f", psp_payment_reference="pi_failed", amount=500))
    captured_order(10_000, currency="eur", psp_reference="pi_eur")
    other, _ = apply(report("dp_c", psp_payment_reference="pi_eur", amount=500, currency="usd"))
    assert (failed.problem, other.problem) == (DisputeProblem.NOT_CAPTURED, DisputeProblem.CURRENCY_MISMATCH)
    assert "EUR" in other.problem_detail and not failed.booked and not other.booked


def test_an_operator_books_a_kept_dispute_once_its_order_is_known():
    dispute, _ = apply(report(psp_payment_reference="pi_later", state=WON))
    assert dispute.problem == DisputeProblem.UNKNOWN_CHARGE
    order = captured_order(10_000, psp_reference="pi_later")
    booked = services.dispute_book_retry(dispute_id=dispute.id, actor="operator:alice")
    assert booked.booked and booked.reinstated_at and not booked.problem  # won already: given back at once
    assert postings(booked) == {withdrawn_key(dispute.id): 1, reinstated_key(dispute.id): 1}
    assert payable(order.seller_id) == 10_000 - commission_for(10_000)
    assert booked.notes.get().author == "operator:alice"


@pytest.mark.django_db(transaction=True)
def test_a_webhook_and_a_settlement_line_at_once_book_once():
    order = captured_order(10_000)
    share = 10_000 - commission_for(10_000)
    barrier = threading.Barrier(4)
    errors = []

    def report_it(source, state):
        try:
            barrier.wait()
            apply(report(source=source, state=state))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report_it, args=args) for args in [
        (DisputeSource.WEBHOOK, NEEDS), (DisputeSource.SETTLEMENT, NEEDS), (DisputeSource.WEBHOOK, REVIEW),
        (DisputeSource.WEBHOOK, NEEDS)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    dispute = Dispute.objects.get()
    assert dispute.state == REVIEW
    assert postings(dispute) == {withdrawn_key(dispute.id): 1}
    assert payable(order.seller_id) == wallet(order.seller_id) == share - 11_500


def test_audit_money_holds_after_every_kind_of_dispute(capsys, settings):
    from django.core.management import call_command
    captured_order(10_000, psp_reference="pi_a")
    captured_order(10_000, psp_reference="pi_b")
    captured_order(10_000, psp_reference="pi_c")
    apply(report("dp_a", psp_payment_reference="pi_a", state=WON))
    apply(report("dp_b", psp_payment_reference="pi_b", state=LOST))
    settings.DISPUTE_FEE_PAYER = "platform"
    apply(report("dp_c", psp_payment_reference="pi_c"))
    apply(report("dp_x", psp_payment_reference="pi_nobody"))
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_a_later_report_books_a_dispute_whose_charge_was_unknown_when_it_came():
    dispute, _ = apply(report(psp_payment_reference="pi_late", psp_charge_id="ch_late"))
    assert dispute.problem == DisputeProblem.UNKNOWN_CHARGE and postings(dispute) == {}
    order = captured_order(10_000, psp_reference="pi_late")  # the janitor found the charge: the order knows it now
    again, created = apply(report(psp_payment_reference="pi_late", psp_charge_id="ch_late", state=REVIEW))
    assert not created and again.booked and not again.problem and again.payment_order_id == order.id
    assert postings(again) == {withdrawn_key(dispute.id): 1}
    assert payable(order.seller_id) == 10_000 - commission_for(10_000) - 11_500  # amount and fee


def test_the_recovery_round_books_kept_disputes_once_their_charge_is_ours():
    won, _ = apply(report("dp_won", psp_payment_reference="pi_w", psp_charge_id="ch_w", state=WON))
    lost, _ = apply(report("dp_lost", psp_payment_reference="pi_l", psp_charge_id="ch_l", state=LOST))
    unknown, _ = apply(report("dp_x", psp_payment_reference="pi_x", psp_charge_id="ch_x"))
    old, _ = apply(report("dp_old", psp_payment_reference="pi_o", psp_charge_id="ch_o"))
    Dispute.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(days=8))
    orders = {ref: captured_order(10_000, psp_reference=ref) for ref in ("pi_w", "pi_l", "pi_o")}
    assert services.disputes_unknown_charges_retry(younger_than_days=7) == 2
    won, lost, unknown, old = (Dispute.objects.get(pk=d.pk) for d in (won, lost, unknown, old))
    assert won.booked and won.reinstated_at and lost.booked and lost.reinstated_at is None
    assert postings(won) == {withdrawn_key(won.id): 1, reinstated_key(won.id): 1}
    assert postings(lost) == {withdrawn_key(lost.id): 1}
    assert unknown.problem == DisputeProblem.UNKNOWN_CHARGE and not old.booked  # still unknown; past the window
    share = 10_000 - commission_for(10_000)
    assert payable(orders["pi_w"].seller_id) == share and payable(orders["pi_l"].seller_id) == share - 11_500
    assert won.notes.get().author == "task:disputes_recover"
    assert services.disputes_unknown_charges_retry(younger_than_days=7) == 0  # booked once
