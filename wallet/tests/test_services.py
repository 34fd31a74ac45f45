import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from wallet import selectors
from wallet.models import WalletMovement
from wallet.services import wallet_credit, wallet_debit

pytestmark = pytest.mark.django_db(transaction=True)


def test_credit_is_applied_once_per_key():
    _, created = wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="k1", reason="t")
    _, again = wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="k1", reason="t")
    wallet_debit(owner_id="sel_a", currency="usd", amount=30, idempotency_key="k2", reason="t")
    assert created and not again
    assert selectors.wallet_balance(owner_id="sel_a", currency="usd") == 70


def test_concurrent_credits_to_one_wallet_lose_nothing():
    barrier = threading.Barrier(20)
    errors = []

    def credit(n):
        try:
            barrier.wait()
            wallet_credit(owner_id="sel_hot", currency="eur", amount=n, idempotency_key=f"c{n}", reason="t")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=credit, args=(n,)) for n in range(1, 21)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert selectors.wallet_balance(owner_id="sel_hot", currency="eur") == sum(range(1, 21))
    assert selectors.wallet_movement_sums()[("sel_hot", "eur")] == sum(range(1, 21))


def test_movements_are_append_only_in_postgresql():
    wallet_credit(owner_id="sel_a", currency="usd", amount=100, idempotency_key="k1", reason="t")
    for statement in ("UPDATE wallet_walletmovement SET amount = 1", "DELETE FROM wallet_walletmovement"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(statement)
    assert WalletMovement.objects.get().amount == 100
