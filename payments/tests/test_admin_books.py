"""The ledger and the wallets in the operators' console (issue 15): transactions listed with their amount,
currency and accounts; seller accounts named by the seller's name; an account's page with its balance and its
entries a page at a time; a wallet's page with its balance in major units, its movements a page at a time and
a link to the seller's ledger account. Logged in as a payment operator, against the real PostgreSQL."""
import pytest
from django.utils import timezone

from core.tests.helpers import operator_client
from ledger import accounts
from ledger.models import Account
from ledger.services import EntrySpec, ledger_transaction_post
from payments.psp.base import PaymentResult, PaymentStatus
from payments.services import payment_order_apply_result
from payments.tests.factories import PaymentOrderFactory, SellerFactory
from wallet.models import Wallet
from wallet.services import wallet_credit

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return operator_client()


@pytest.fixture
def seller(settings):
    """Alpha Books, paid 1,234.56 USD for one captured order (10 % commission)."""
    settings.PLATFORM_COMMISSION_BPS = 1000
    alpha = SellerFactory(name="Alpha Books")
    order = PaymentOrderFactory(seller=alpha, amount=123456, currency="usd", state="executing",
                                psp_reference="pi_books")
    payment_order_apply_result(payment_order_id=order.id, actor="test", result=PaymentResult(
        status=PaymentStatus.SUCCEEDED, psp_reference="pi_books", amount=123456, currency="usd"))
    return alpha


def test_transactions_list_their_amount_currency_and_accounts_by_name(operator, seller):
    html = operator.get("/admin/ledger/ledgertransaction/").content.decode()
    assert "1,234.56 USD" in html  # the posting's size, in major units with its currency
    assert "Payable to Alpha Books" in html and "assets:psp_receivable" in html
    assert "revenue:platform_commission" in html and ">Dr<" in html and ">Cr<" in html


def test_seller_accounts_are_named_by_the_seller(operator, seller):
    html = operator.get("/admin/ledger/account/").content.decode()
    assert "Payable to Alpha Books" in html
    assert "-1,111.11 USD" in html  # the seller's share, a credit (debit-positive balance)


def test_an_accounts_page_shows_its_balance_and_its_entries_a_page_at_a_time(operator, seller):
    account = Account.objects.get(code=accounts.seller_payable(seller.pk))
    for n in range(55):  # 55 more postings to the seller: 56 entries, two pages of 50
        ledger_transaction_post(idempotency_key=f"adj:{n}", description=f"adjustment {n}", reference=f"adj_{n}",
                                entries=[EntrySpec(accounts.PSP_RECEIVABLE, "usd", 100),
                                         EntrySpec(account.code, "usd", -100)], occurred_at=timezone.now())
    url = f"/admin/ledger/account/{account.pk}/change/"
    html = operator.get(url).content.decode()
    assert "Payable to Alpha Books" in html and "-1,166.11 USD" in html
    assert "56 in all" in html and "page 1 of 2" in html and "adjustment 54" in html
    assert "adjustment 0<" not in html  # the oldest are on page 2
    assert f'href="/admin/payments/seller/{seller.pk}/change/"' in html
    second = operator.get(url, {"page": 2}).content.decode()
    assert "adjustment 0<" in second and "adjustment 54" not in second
    assert "1,111.11 USD" in second  # the capture's credit


def test_a_wallets_page_shows_balance_movements_and_the_ledger_account(operator, seller):
    wallet = Wallet.objects.get(owner_id=seller.pk, currency="usd")
    for n in range(3):
        wallet_credit(owner_id=seller.pk, currency="usd", amount=1000, idempotency_key=f"w:{n}", reason=f"bonus {n}")
    listed = operator.get("/admin/wallet/wallet/").content.decode()
    assert "Alpha Books" in listed and "1,141.11 USD" in listed
    html = operator.get(f"/admin/wallet/wallet/{wallet.pk}/change/").content.decode()
    assert "Wallet of Alpha Books in USD" in html and "1,141.11 USD" in html and "Minor units" not in html
    assert "4 in all" in html and "bonus 2" in html and "1,111.11 USD" in html
    link = f"/admin/ledger/account/of-seller/{seller.pk}/"
    assert f'href="{link}"' in html
    account = Account.objects.get(code=accounts.seller_payable(seller.pk))
    assert operator.get(link)["Location"] == f"/admin/ledger/account/{account.pk}/change/"
    assert operator.get("/admin/ledger/account/of-seller/sel_nobody/").status_code == 404


def test_the_books_pages_make_a_fixed_number_of_queries(operator, seller, django_assert_max_num_queries):
    for n in range(30):
        other = SellerFactory(name=f"Seller {n}")
        ledger_transaction_post(idempotency_key=f"x:{n}", description="x", entries=[
            EntrySpec(accounts.PSP_RECEIVABLE, "usd", 100), EntrySpec(accounts.seller_payable(other.pk), "usd", -100)])
    with django_assert_max_num_queries(12):
        operator.get("/admin/ledger/ledgertransaction/")


def test_a_webhooks_payload_is_shown_as_a_table(operator):
    from payments.models import WebhookEvent

    WebhookEvent.objects.create(id="evt_t", type="payment_intent.succeeded", object_id="pi_t", status="processed",
                                payload={"id": "evt_t", "data": {"object": {"id": "pi_t", "amount": 4999,
                                                                            "charges": [{"id": "ch_t"}]}}})
    html = operator.get("/admin/payments/webhookevent/evt_t/change/").content.decode()
    assert '<table class="json-table"><tr><th scope="row">id</th><td>evt_t</td></tr>' in html
    assert '<th scope="row">amount</th><td>4999</td>' in html and '<th scope="row">0</th>' in html
    assert "{&quot;" not in html and '{"id"' not in html  # no raw JSON


def test_accounts_and_wallets_are_found_by_the_sellers_name(operator, seller):
    SellerFactory(name="Zulu Garden")

    def found(url, term):
        response = operator.get(url, {"q": term})
        return response, [str(obj) for obj in response.context["cl"].result_list]

    page, accounts_found = found("/admin/ledger/account/", "alpha")
    assert accounts_found == [accounts.seller_payable(seller.pk)] and "Payable to Alpha Books" in page.content.decode()
    page, wallets_found = found("/admin/wallet/wallet/", "Alpha")
    assert wallets_found == [f"{seller.pk} usd"] and "1,111.11 USD" in page.content.decode()
    assert found("/admin/wallet/wallet/", "zulu")[1] == []  # a seller without a wallet
    assert found("/admin/ledger/account/", "psp_receivable")[1] == [accounts.PSP_RECEIVABLE]  # codes still found
