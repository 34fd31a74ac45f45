"""audit_money's check of the balance buckets, broken on purpose: it names the held credit at fault."""
import pytest
from django.core.management import call_command

from core.tests.helpers import audit_violations
from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from wallet.services import wallet_credit

pytestmark = pytest.mark.django_db


def violations(capsys) -> list[str]:
    return audit_violations(capsys)


def post_payable(key: str, seller: str, amount: int) -> None:
    ledger_transaction_post(idempotency_key=key, description="test", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", amount), EntrySpec(accounts.seller_payable(seller), "usd", -amount)])


def test_held_credits_that_are_their_postings_pass(capsys):
    wallet_credit(owner_id="sel_a", currency="usd", amount=700, idempotency_key="capture:1", reason="t")
    post_payable("capture:1", "sel_a", 700)
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_a_held_credit_posted_under_another_key(capsys):
    # The totals agree (wallet 700 = payable 700): only the buckets' own check sees it.
    wallet_credit(owner_id="sel_a", currency="usd", amount=700, idempotency_key="capture:1", reason="t")
    post_payable("something-else", "sel_a", 700)
    assert violations(capsys) == [
        "held wallet credit capture:1 of sel_a (700 usd) is not its ledger payable's credit (ledger: none)"]


def test_a_held_credit_of_another_amount_or_seller(capsys):
    wallet_credit(owner_id="sel_a", currency="usd", amount=700, idempotency_key="capture:1", reason="t")
    post_payable("capture:1", "sel_a", 600)
    post_payable("top-up", "sel_a", 100)
    wallet_credit(owner_id="sel_b", currency="usd", amount=50, idempotency_key="capture:2", reason="t")
    post_payable("capture:2", "sel_c", 50)
    wallet_credit(owner_id="sel_c", currency="usd", amount=50, idempotency_key="top-up-c", reason="t", held=False)
    post_payable("top-up-b", "sel_b", 50)
    assert violations(capsys) == [
        "held wallet credit capture:1 of sel_a (700 usd) is not its ledger payable's credit "
        "(ledger: liabilities:seller_payable:sel_a 600 usd)",
        "held wallet credit capture:2 of sel_b (50 usd) is not its ledger payable's credit "
        "(ledger: liabilities:seller_payable:sel_c 50 usd)",
    ]
