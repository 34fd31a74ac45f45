"""No two orders share a PSP reference (migration 0018, issue #12): the database refuses it, and payments reports
a PaymentIntent reported for a second order as the mismatch it is (``PSPMismatch``: dead-lettered for an
operator), never as the database's error. Reconciliation relies on it: a line finds at most one order."""
import importlib
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction

from payments.exceptions import PSPMismatch
from payments.models import PaymentOrder, PaymentOrderState
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result, payment_order_apply_result_or_dead_letter
from payments.tests.factories import PaymentOrderFactory
from wallet import selectors as wallet_selectors

migration = importlib.import_module("payments.migrations.0018_psp_reference_unique")


def result(order, status, *, psp_reference="pi_shared"):
    return PaymentResult(status=status, psp_reference=psp_reference, amount=order.amount, currency=order.currency,
                         payment_order_id=order.id)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.PROCESSING,
                                    PaymentStatus.REQUIRES_ACTION])
def test_another_orders_psp_reference_is_a_mismatch_dead_lettered_and_moves_no_money(status):
    PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, psp_reference="pi_shared")
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000)
    state = payment_order_apply_result_or_dead_letter(payment_order_id=order.id, result=result(order, status),
                                                      actor="task:execute")
    assert state == PaymentOrderState.DEAD_LETTER
    order.refresh_from_db()
    assert (order.failure_code, order.psp_reference) == ("psp_mismatch", "")
    assert "pi_shared is another order's" in order.failure_message
    assert wallet_selectors.wallet_balance(owner_id=order.seller_id, currency="usd") == 0
    assert list(order.transitions.values_list("to_state", flat=True)) == [PaymentOrderState.DEAD_LETTER]


@pytest.mark.django_db
def test_the_webhooks_path_raises_the_mismatch_and_its_transaction_goes_on():
    PaymentOrderFactory(state=PaymentOrderState.SUCCEEDED, psp_reference="pi_shared")
    order = PaymentOrderFactory(state=PaymentOrderState.PENDING, amount=1000)
    with transaction.atomic():  # the inbox's transaction, as webhook_inbox_process holds it
        with pytest.raises(PSPMismatch):
            payment_order_apply_result(payment_order_id=order.id, result=result(order, PaymentStatus.SUCCEEDED),
                                       actor="webhook:evt_x")
        assert PaymentOrder.objects.get(pk=order.pk).state == PaymentOrderState.PENDING  # still usable


@pytest.mark.django_db
def test_the_database_refuses_a_second_order_with_a_reference_and_not_orders_without_one():
    PaymentOrderFactory(psp_reference="")
    PaymentOrderFactory(psp_reference="")
    PaymentOrderFactory(psp_reference="pi_once")
    with pytest.raises(IntegrityError, match="payment_order_one_per_psp_reference"), transaction.atomic():
        PaymentOrderFactory(psp_reference="pi_once")


@pytest.mark.django_db
def test_the_migration_refuses_to_build_over_duplicates_and_names_them():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {migration.UNIQUE}")  # as before 0018 (the test's transaction rolls it back)
    first, second = PaymentOrderFactory(psp_reference="pi_twice"), PaymentOrderFactory(psp_reference="pi_twice")
    PaymentOrderFactory(psp_reference="pi_once")
    with pytest.raises(RuntimeError) as refused:
        migration.refuse_duplicates(None, SimpleNamespace(connection=connection))
    message = str(refused.value)
    assert "1 PSP references" in message and "pi_once" not in message
    assert f"pi_twice: {', '.join(sorted([first.id, second.id]))}" in message


@pytest.mark.django_db
def test_the_migration_builds_when_every_reference_is_one_orders():
    PaymentOrderFactory(psp_reference="pi_a")
    PaymentOrderFactory(psp_reference="")
    PaymentOrderFactory(psp_reference="")
    migration.refuse_duplicates(None, SimpleNamespace(connection=connection))
