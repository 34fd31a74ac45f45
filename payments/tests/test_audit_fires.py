"""Each of audit_money's checks, broken on purpose (by raw SQL as the database superuser where the
application cannot), fails the command naming exactly that invariant."""
import pytest
from django.core.management import call_command
from django.db import connection

from core.tests.helpers import audit_violations
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments.models import PaymentOrderState, Refund
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result
from payments.tests.factories import PaymentOrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=2500, psp_reference="pi_audit")
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_audit", amount=2500, currency="usd"))
    order.refresh_from_db()
    return order


def violations(capsys) -> list[str]:
    return audit_violations(capsys)


def superuser_sql(sql: str, params=()) -> None:
    """Past the ledger's triggers, as only a superuser can (the app's role cannot: test_db_roles)."""
    with connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(sql, params)
        cur.execute("SET LOCAL session_replication_role = origin")


def test_sound_books_pass(order, capsys):
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_an_unbalanced_entry_breaks_the_trial_balance_and_its_transaction(order, capsys):
    superuser_sql("INSERT INTO ledger_entry (transaction_id, account_id, currency, amount) "
                  "SELECT e.transaction_id, e.account_id, e.currency, 7 FROM ledger_entry e "
                  "JOIN ledger_account a ON a.id = e.account_id WHERE a.code = %s", [accounts.PSP_RECEIVABLE])
    try:
        found = violations(capsys)
    finally:  # put the books back: the test's end checks deferred constraints, the balance trigger among them
        superuser_sql("DELETE FROM ledger_entry WHERE amount = 7")
    assert len(found) == 2 and found[0] == "trial balance is 7 usd, not zero"
    assert found[1].startswith("ledger transaction ") and found[1].endswith(" does not balance in usd: 7")


def test_a_wallet_whose_movements_do_not_sum_to_it(order, capsys):
    superuser_sql("INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at) "
                  "SELECT id, 1, 'stray', 'test', now() FROM wallet_wallet")
    assert violations(capsys) == [f"wallet {order.seller_id} usd is 2500 but its movements sum to 2501"]


def test_a_wallet_that_differs_from_its_ledger_payable(order, capsys):
    superuser_sql("UPDATE wallet_wallet SET balance = balance + 1")
    superuser_sql("INSERT INTO wallet_walletmovement (wallet_id, amount, idempotency_key, reason, created_at) "
                  "SELECT id, 1, 'stray', 'test', now() FROM wallet_wallet")
    assert violations(capsys) == [f"wallet {order.seller_id} usd is 2501 but its ledger payable is 2500"]


def test_a_succeeded_order_without_its_capture_posting(order, capsys):
    other = PaymentOrderFactory(state=PaymentOrderState.FAILED)
    superuser_sql("UPDATE payments_paymentorder SET state = 'succeeded' WHERE id = %s", [other.id])
    assert violations(capsys) == [f"succeeded order {other.id} has 0 capture postings, not 1"]


def test_a_capture_posting_without_a_succeeded_order(order, capsys):
    superuser_sql("UPDATE payments_paymentorder SET state = 'failed' WHERE id = %s", [order.id])
    found = violations(capsys)
    assert found == [f"capture posting payment_order:{order.id}:capture belongs to no succeeded order"]


def test_a_succeeded_refund_without_its_posting(order, capsys):
    refund = Refund.objects.create(payment_order=order, amount=100, currency="usd")
    superuser_sql("UPDATE payments_refund SET state = 'succeeded' WHERE id = %s", [refund.id])
    assert violations(capsys) == [f"succeeded refund {refund.id} has 0 postings, not 1"]


def test_refunds_above_the_capture(order, capsys):
    refunds = [Refund.objects.create(payment_order=order, amount=amount, currency="usd") for amount in (2000, 1000)]
    for refund in refunds:  # each posted once (on accounts that leave the wallets alone), so only this check fires
        superuser_sql("UPDATE payments_refund SET state = 'succeeded' WHERE id = %s", [refund.id])
        ledger_transaction_post(idempotency_key=f"refund:{refund.id}", description="test", entries=[
            EntrySpec(accounts.PSP_FEES, "usd", refund.amount),
            EntrySpec(accounts.PSP_RECEIVABLE, "usd", -refund.amount)])
    assert violations(capsys) == [f"order {order.id} has 3000 refunded of 2500 captured"]


def _reversed_refund(order):
    """A refund that succeeded and failed after it (its posting, no reversal yet), as only the database can make."""
    refund = Refund.objects.create(payment_order=order, amount=100, currency="usd")
    superuser_sql("UPDATE payments_refund SET state = 'failed', reversed_at = now() WHERE id = %s", [refund.id])
    ledger_transaction_post(idempotency_key=f"refund:{refund.id}", description="test", entries=[
        EntrySpec(accounts.BANK, "usd", 100), EntrySpec(accounts.PSP_RECEIVABLE, "usd", -100)])
    return refund


def test_a_refund_failed_after_it_succeeded_without_its_reversal(order, capsys):
    refund = _reversed_refund(order)
    assert violations(capsys) == [f"refund {refund.id} failed after it succeeded has 1 postings and 0 reversals, "
                                  "not 1 and 1"]


def test_a_refund_reversal_without_a_refund_that_failed_after_it_succeeded(order, capsys):
    refund = _reversed_refund(order)
    ledger_transaction_post(idempotency_key=f"refund:{refund.id}:failed", description="test", entries=[
        EntrySpec(accounts.BANK, "usd", -100), EntrySpec(accounts.PSP_RECEIVABLE, "usd", 100)])
    call_command("audit_money")  # the refund and its reversal: sound
    superuser_sql("UPDATE payments_refund SET reversed_at = NULL WHERE id = %s", [refund.id])
    assert violations(capsys) == [f"refund reversal refund:{refund.id}:failed belongs to no refund that failed "
                                  "after it succeeded"]
