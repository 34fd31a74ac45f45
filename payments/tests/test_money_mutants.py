"""Captures, refunds and the PSP's amount rules, held to the figures they post (docs/mutation.md).

Each test here was written because a mutant of the money code survived the rest of the suite:
the split of a partial refund between seller and platform, which client may refund which order,
what an operator reads on a dead letter, and the PSP's limits at their exact edges.
"""
import re

import pytest
from django.utils import timezone

from ledger import accounts
from ledger import selectors as ledger_selectors
from ledger.models import LedgerTransaction
from payments.exceptions import PaymentOrderNotFound
from payments.models import PaymentOrder, PaymentOrderState, Refund, RefundState, SuspectedDoubleCharge
from payments.psp.base import PaymentResult, PaymentStatus, RefundResult
from payments.psp.stripe_currencies import from_stripe, psp_amount_problem, to_stripe
from payments.services.execution import payment_order_apply_result, payment_order_apply_result_or_dead_letter
from payments.services.postings import capture_posting_key, refund_posting_key
from payments.services.refunds import (
    RefundNotAllowed,
    RefundTooLarge,
    refund_apply_result,
    refund_create,
)
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory
from wallet import selectors as wallet_selectors


def captured(amount=1000, currency="usd", **fields):
    """A succeeded order, captured and posted through the service."""
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=amount, currency=currency, **fields)
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=f"pi_{order.id}", amount=amount, currency=currency))
    order.refresh_from_db()
    return order


def refund(order, amount, *, actor="test", reason="returned"):
    return refund_create(client=order.payment_event.client, payment_order_id=order.id, amount=amount,
                         reason=reason, actor=actor)


def refunded(refund_row, *, status=PaymentStatus.SUCCEEDED, reference=None):
    return refund_apply_result(refund_id=refund_row.id, actor="psp", result=RefundResult(
        status=status, psp_reference=reference or f"re_{refund_row.id}", amount=refund_row.amount,
        currency=refund_row.currency))


def money(order):
    """(the seller's wallet, the seller's payable, the platform's commission), as credits are read."""
    return (wallet_selectors.wallet_balance(owner_id=order.seller_id, currency=order.currency),
            -ledger_selectors.account_balance(code=accounts.seller_payable(order.seller_id), currency=order.currency),
            -ledger_selectors.account_balance(code=accounts.PLATFORM_COMMISSION, currency=order.currency))


# --- captures --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_capture_is_posted_under_the_orders_key_and_names_the_order(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    order = captured(1000)
    posting = LedgerTransaction.objects.get(idempotency_key=capture_posting_key(order.id))
    assert posting.reference == order.id
    assert money(order) == (975, 975, 25)
    audit = order.transitions.get()
    assert (audit.from_state, audit.to_state, audit.actor, audit.reason) == (
        PaymentOrderState.EXECUTING, PaymentOrderState.SUCCEEDED, "test", "PSP captured the payment")


@pytest.mark.django_db
def test_a_declined_order_keeps_the_psps_payment_intent():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, psp_reference="")
    payment_order_apply_result(payment_order_id=order.id, actor="psp", result=PaymentResult(
        status=PaymentStatus.FAILED, psp_reference="pi_declined", amount=1000, currency="usd",
        failure_code="card_declined", failure_message="Your card was declined."))
    order.refresh_from_db()
    assert (order.state, order.psp_reference, order.failure_code) == (
        PaymentOrderState.FAILED, "pi_declined", "card_declined")


@pytest.mark.django_db
def test_an_order_the_psp_is_still_processing_keeps_its_payment_intent_and_is_checked_later():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, psp_reference="")
    before = timezone.now()
    payment_order_apply_result(payment_order_id=order.id, actor="psp", result=PaymentResult(
        status=PaymentStatus.PROCESSING, psp_reference="pi_pending", amount=1000, currency="usd"))
    order.refresh_from_db()
    assert (order.state, order.psp_reference) == (PaymentOrderState.PENDING, "pi_pending")
    assert order.next_action_at > before  # the janitor asks the PSP then


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "status"), [
    (PaymentOrderState.NOT_STARTED, PaymentStatus.SUCCEEDED),  # a success for an order never sent: not ours
    (PaymentOrderState.FAILED, PaymentStatus.FAILED),  # another failed PaymentIntent: no money was taken
    (PaymentOrderState.SUCCEEDED, PaymentStatus.PROCESSING),
])
def test_only_another_success_for_a_decided_order_is_a_suspected_double_charge(state, status):
    order = PaymentOrderFactory(state=state, psp_reference="pi_first")
    assert payment_order_apply_result(payment_order_id=order.id, actor="psp", result=PaymentResult(
        status=status, psp_reference="pi_second", amount=1000, currency="usd")) == state
    assert not SuspectedDoubleCharge.objects.exists()
    assert money(order)[0] == 0


@pytest.mark.django_db
def test_a_success_for_another_payment_intent_says_which_on_the_dead_letter():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, psp_reference="pi_ours")
    payment_order_apply_result_or_dead_letter(payment_order_id=order.id, actor="janitor", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_other", amount=1000, currency="usd"))
    order.refresh_from_db()
    assert order.state == PaymentOrderState.DEAD_LETTER
    assert order.failure_code == "psp_mismatch"
    assert "pi_other" in order.failure_message and "pi_ours" in order.failure_message


@pytest.mark.django_db
def test_a_success_naming_another_order_says_which_on_the_dead_letter():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    payment_order_apply_result_or_dead_letter(payment_order_id=order.id, actor="janitor", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_1", amount=1000, currency="usd",
        payment_order_id="ord_someone_else"))
    order.refresh_from_db()
    assert order.state == PaymentOrderState.DEAD_LETTER
    assert "ord_someone_else" in order.failure_message and order.id in order.failure_message


@pytest.mark.django_db
def test_an_amount_mismatch_says_both_amounts_on_the_dead_letter():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING)
    payment_order_apply_result_or_dead_letter(payment_order_id=order.id, actor="janitor", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_1", amount=999, currency="usd"))
    order.refresh_from_db()
    assert order.failure_code == "psp_amount_mismatch"
    assert "999" in order.failure_message and "1000" in order.failure_message


@pytest.mark.django_db
def test_two_extra_payment_intents_for_one_order_are_two_suspicions_each_with_its_reference():
    order = captured(1000)
    actor = "webhook:" + "x" * 150  # longer than the column: kept, cut to it
    for reference in ("pi_extra_1", "pi_extra_2"):
        payment_order_apply_result(payment_order_id=order.id, actor=actor, result=PaymentResult(
            status=PaymentStatus.SUCCEEDED, psp_reference=reference, amount=1000, currency="usd"))
    rows = SuspectedDoubleCharge.objects.filter(payment_order=order).order_by("psp_reference")
    assert [row.psp_reference for row in rows] == ["pi_extra_1", "pi_extra_2"]
    assert {row.detected_by for row in rows} == {actor[:100]}
    assert money(order)[0] == 1000  # the extra charges move nothing in our books


# --- refunds: who may refund what -------------------------------------------------------------


@pytest.mark.django_db
def test_an_order_that_did_not_succeed_cannot_be_refunded_and_says_why():
    order = PaymentOrderFactory(state=PaymentOrderState.FAILED)
    with pytest.raises(RefundNotAllowed) as refused:
        refund(order, 100)
    assert str(refused.value) == f"Payment order {order.id} is failed; only succeeded orders are refunded."


@pytest.mark.django_db
def test_a_client_cannot_refund_another_clients_order():
    mine, theirs = captured(1000), captured(1000)
    with pytest.raises(PaymentOrderNotFound) as refused:
        refund_create(client=mine.payment_event.client, payment_order_id=theirs.id, amount=100, reason="",
                      actor="test")
    assert refused.value.param == "payment_order"
    theirs.refresh_from_db()
    assert theirs.amount_refunded == 0 and not Refund.objects.exists()


@pytest.mark.django_db
def test_a_refund_is_taken_from_the_order_named_not_another_of_the_clients():
    first = captured(1000)
    event = PaymentEventFactory(client=first.payment_event.client)
    second = captured(1000, payment_event=event)
    row = refund(second, 300)
    assert row.payment_order_id == second.id
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.amount_refunded, second.amount_refunded) == (0, 300)


@pytest.mark.django_db
def test_no_amount_refunds_what_is_left_and_the_last_minor_unit_can_be_refunded():
    order = captured(1000)
    refund(order, 999)
    last = refund(order, None)
    assert last.amount == 1
    order.refresh_from_db()
    assert order.amount_refunded == 1000
    with pytest.raises(RefundTooLarge) as refused:
        refund(order, 1)
    assert refused.value.code == "charge_already_refunded"
    assert str(refused.value) == "This payment order has already been fully refunded."


@pytest.mark.django_db
def test_a_refund_above_what_is_left_names_the_amount_parameter():
    order = captured(1000)
    refund(order, 600)
    with pytest.raises(RefundTooLarge) as refused:
        refund(order, 500)
    assert refused.value.param == "amount"
    assert "500" in str(refused.value) and "400" in str(refused.value)


@pytest.mark.django_db
def test_a_new_refund_is_audited_and_due_for_the_sweeper_later_not_now():
    order = captured(1000)
    actor = "operator:" + "y" * 150
    before = timezone.now()
    row = refund(order, 100, actor=actor, reason="")
    assert row.next_action_at > before  # a lost enqueue is picked up by the sweeper once this has passed
    assert row.reason == ""
    audit = row.transitions.get()
    assert (audit.from_state, audit.to_state, audit.actor, audit.reason) == (
        "", RefundState.PENDING, actor[:100], "refund requested")


@pytest.mark.django_db
def test_a_refund_keeps_the_reason_it_was_given():
    row = refund(captured(1000), 100, reason="damaged in transit")
    assert row.reason == "damaged in transit"
    assert row.transitions.get().reason == "damaged in transit"


# --- refunds: what they post -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_succeeded_refund_records_the_psps_refund_and_is_posted_under_its_key():
    order = captured(1000)
    row = refund(order, 300)
    assert refunded(row, reference="re_psp_1") == RefundState.SUCCEEDED
    row.refresh_from_db()
    assert row.psp_reference == "re_psp_1"
    assert LedgerTransaction.objects.get(idempotency_key=refund_posting_key(row.id)).reference == row.id
    audit = row.transitions.get(to_state=RefundState.SUCCEEDED)
    assert (audit.from_state, audit.actor, audit.reason) == (RefundState.PENDING, "psp", "PSP refunded")
    assert money(order) == (700, 700, 0)


@pytest.mark.django_db
def test_a_partial_refund_gives_back_the_commission_of_that_part_only(settings):
    settings.PLATFORM_COMMISSION_BPS = 250  # 25 of 1000
    order = captured(1000)
    refunded(refund(order, 500))
    assert money(order) == (975 - 488, 975 - 488, 25 - 12)  # 12 of the platform's 25, 488 of the seller's


@pytest.mark.django_db
def test_a_small_refund_rounds_the_commission_in_the_sellers_favour(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    order = captured(1000)
    refunded(refund(order, 39))  # 39 * 2.5% = 0.975: the platform gives back nothing yet
    assert money(order) == (975 - 39, 975 - 39, 25)


@pytest.mark.django_db
def test_pending_and_failed_refunds_and_other_orders_refunds_do_not_shift_the_split(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    other = captured(1000)
    refunded(refund(other, 300))
    order = captured(1000)
    refunded(refund(order, 200), status=PaymentStatus.FAILED)  # failed: its reservation is released
    refund(order, 300)  # still pending at the PSP
    refunded(refund(order, 500))
    assert money(order) == (975 - 488, 975 - 488, 25 + 25 - 7 - 12)  # the platform's account is shared
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 487
    order.refresh_from_db()
    assert order.amount_refunded == 800  # 300 pending and 500 refunded; the failed 200 released


@pytest.mark.django_db
def test_the_split_of_a_second_refund_counts_only_the_first(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    order = captured(1000)
    refunded(refund(order, 300))  # 7 back (25 * 300 // 1000)
    assert money(order)[2] == 25 - 7
    refunded(refund(order, 300))  # 25 * 600 // 1000 - 7 = 8 back
    assert money(order) == (975 - 293 - 292, 975 - 293 - 292, 25 - 7 - 8)


@pytest.mark.django_db
def test_refunded_orders_stay_balanced_in_the_ledger(settings):
    settings.PLATFORM_COMMISSION_BPS = 250
    order = captured(1000)
    refunded(refund(order, 300))
    refunded(refund(order, 700))
    assert money(order) == (0, 0, 0)
    assert ledger_selectors.trial_balance() == {"usd": 0}
    assert PaymentOrder.objects.get(pk=order.pk).amount_refunded == 1000


# --- the PSP's amount rules at their edges --------------------------------------------------------


@pytest.mark.parametrize(("amount", "currency", "sent"), [
    (1200, "mga", 12), (5, "isk", 500), (1999, "usd", 1999), (500, "jpy", 500), (12340, "kwd", 12340)])
def test_amounts_cross_the_psp_boundary_as_whole_integers(amount, currency, sent):
    there = to_stripe(amount, currency)
    back = from_stripe(there, currency)
    assert (there, back) == (sent, amount)
    assert type(there) is int and type(back) is int  # a "12.0" would be refused by the PSP


@pytest.mark.parametrize(("amount", "currency"), [
    (50, "usd"),  # exactly Stripe's minimum charge
    (1, "zar"),  # no published minimum: one minor unit
    (99_999_999, "usd"),  # exactly eight digits
    (1200, "mga"),  # whole ariary
])
def test_amounts_at_the_psps_limits_are_accepted(amount, currency):
    assert psp_amount_problem(amount, currency) is None


@pytest.mark.parametrize(("amount", "currency", "code", "message"), [
    (1230, "mga", "amount_not_whole", "MGA is charged in whole units: 12.30 MGA has a fraction."),
    (1205, "kwd", "amount_invalid_precision",
     "KWD amounts must end in 0 (the PSP rounds three-decimal currencies to two): 1.205 KWD."),
    (100_000_000, "usd", "amount_too_large", "1000000.00 USD is above the PSP's maximum of 999999.99 USD."),
    (49, "usd", "amount_too_small", "0.49 USD is below the PSP's minimum charge of 0.50 USD."),
    (5000, "iqd", "currency_not_supported", "IQD is not a currency the PSP charges in."),
], ids=lambda value: re.sub(r"\W+", "-", str(value))[:24])  # short ids without spaces (mutmut)
def test_what_the_psp_would_refuse_is_named_and_explained(amount, currency, code, message):
    problem = psp_amount_problem(amount, currency)
    assert (problem.code, problem.message) == (code, message)
