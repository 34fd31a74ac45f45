"""The operator console renders every model, money is read-only, and audit_money catches violations."""
import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command

from ledger import accounts
from ledger.services import EntrySpec, ledger_transaction_post
from payments.models import PaymentOrderState
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services import payment_order_apply_result
from payments.tests.factories import PaymentOrderFactory
from wallet.services import wallet_credit

pytestmark = pytest.mark.django_db


@pytest.fixture
def succeeded_order():
    order = PaymentOrderFactory(state=PaymentOrderState.EXECUTING, amount=2500, psp_reference="pi_admin")
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_admin", amount=2500, currency="usd"))
    order.refresh_from_db()
    return order


def test_every_registered_model_lists_and_opens(admin_client, succeeded_order):
    for model in admin.site._registry:
        meta = model._meta
        changelist = admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert changelist.status_code == 200, meta.label
        obj = model.objects.first()
        if obj is not None:
            assert admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/change/").status_code == 200


def test_search_by_psp_reference_and_filter_by_state(admin_client, succeeded_order):
    found = admin_client.get("/admin/payments/paymentorder/", {"q": "pi_admin"})
    assert succeeded_order.id.encode() in found.content
    filtered = admin_client.get("/admin/payments/paymentorder/", {"state__exact": "failed"})
    assert succeeded_order.id.encode() not in filtered.content


def test_money_and_state_cannot_be_edited_in_the_admin(admin_client, succeeded_order):
    url = f"/admin/payments/paymentorder/{succeeded_order.id}/change/"
    admin_client.post(url, {"amount": 1, "state": "failed"})
    succeeded_order.refresh_from_db()
    assert (succeeded_order.amount, succeeded_order.state) == (2500, "succeeded")
    assert b'name="amount"' not in admin_client.get(url).content
    entry_url = "/admin/ledger/entry/"
    assert admin_client.get(entry_url + "add/").status_code == 403


def test_audit_money_passes_on_sound_books(succeeded_order, capsys):
    call_command("audit_money")
    assert "all invariants hold" in capsys.readouterr().out


def test_audit_money_reports_a_wallet_that_differs_from_its_payable(succeeded_order, capsys):
    wallet_credit(owner_id=succeeded_order.seller_id, currency="usd", amount=1, idempotency_key="stray", reason="x",
                  held=False)  # not on hold: only the wallet-vs-payable check can see it
    with pytest.raises(CommandError, match="1 violation"):
        call_command("audit_money")
    assert f"wallet {succeeded_order.seller_id} usd is 2501 but its ledger payable is 2500" in capsys.readouterr().out


def test_audit_money_reports_a_capture_posting_without_a_succeeded_order(succeeded_order, capsys):
    other = PaymentOrderFactory(state=PaymentOrderState.FAILED)
    ledger_transaction_post(idempotency_key=f"payment_order:{other.id}:capture", description="bogus", entries=[
        EntrySpec(accounts.PSP_RECEIVABLE, "usd", 5), EntrySpec(accounts.PLATFORM_COMMISSION, "usd", -5)])
    with pytest.raises(CommandError):
        call_command("audit_money")
    assert f"capture posting payment_order:{other.id}:capture belongs to no succeeded order" in capsys.readouterr().out


def test_dashboard_shows_volumes_and_what_needs_attention(admin_client, succeeded_order):
    PaymentOrderFactory(state=PaymentOrderState.DEAD_LETTER)
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    assert page.context["attention"]["dead_letter"] == 1
    assert {(row["state"], row["count"]) for row in page.context["volumes"]} == {("succeeded", 1), ("dead_letter", 1)}
    assert b"25.00 USD" in page.content
