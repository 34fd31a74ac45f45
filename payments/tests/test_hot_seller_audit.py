"""A hot seller (issue #8): captures for one seller commit at once from many connections, their credits spread
over the wallet's slots (``wallet.models.WalletSlot``), and ``audit_money`` finds wallet = ledger every time it
looks while they do, not only once they are done."""
import threading

import pytest
from django.db import connections

from payments.audit import money_audit
from payments.models import PaymentOrderState
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services.execution import payment_order_apply_result
from payments.services.postings import commission_for
from payments.tests.factories import PaymentEventFactory, PaymentOrderFactory
from payments.tests.test_checkout_flow import assert_audit_clean
from wallet import selectors as wallet_selectors
from wallet.models import WalletSlot

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_audit_holds_while_a_hot_sellers_captures_commit():
    first = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000)
    orders = [first] + [PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=1000 + n, seller=first.seller,
                                            payment_event=PaymentEventFactory(client=first.seller.client))
                        for n in range(1, 48)]
    payment_order_apply_result(payment_order_id=first.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference=f"pi_{first.id}", amount=1000, currency="usd"))
    rest = orders[1:]
    barrier, errors = threading.Barrier(8), []

    def capture(mine):
        try:
            barrier.wait()
            for order in mine:
                assert payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
                    status=PaymentStatus.SUCCEEDED, psp_reference=f"pi_{order.id}", amount=order.amount,
                    currency="usd")) == "succeeded"
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=capture, args=(rest[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    audits = []
    while any(thread.is_alive() for thread in threads) or not audits:
        audits.append(money_audit())
    for thread in threads:
        thread.join()
    assert errors == [] and all(found == [] for found in audits), [found for found in audits if found][:1]
    shares = sum(o.amount - commission_for(o.amount) for o in orders)
    assert wallet_selectors.wallet_balance(owner_id=first.seller_id, currency="usd") == shares
    assert sum(WalletSlot.objects.filter(wallet__owner_id=first.seller_id).values_list("balance", flat=True)) == shares
    assert_audit_clean()
