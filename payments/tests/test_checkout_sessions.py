"""The hosted payment page over HTTP, as a browser drives it (the card field's own requests made as
the PSP's iframe makes them): a session created through the API, the page, the card tokenised at the
PSP with the publishable key, the confirmation (once, however many tabs), the progress, 3-D Secure,
the outcome. Real HTTP, worker and sandbox; the browser itself in test_hosted_page_browser."""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from conftest import wait_for
from core.tests import loopback
from payments.models import CheckoutSession, PaymentEvent, PaymentOrder
from payments.tests.test_checkout_flow import assert_audit_clean, onboard, sandbox_money
from payments.tests.test_psp_faults import configure
from payments.tests.test_three_d_secure import answer_challenge, follow_return
from wallet import selectors as wallet_selectors

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SUCCESS = "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}"
CANCEL = "https://shop.example/cart"


def create_session(api, sellers, *, key="cs-1", success_url=SUCCESS, cancel_url=CANCEL, **extra):
    orders = [{"seller": sellers[0], "amount": 2400, "currency": "eur",
               "items": [{"name": "Blue mug", "quantity": 2, "amount": 1200}]},
              *({"seller": s, "amount": 1500 + n, "currency": "eur"} for n, s in enumerate(sellers[1:]))]
    body = {"buyer": {"reference": "buyer-page", "email": "page@example.com"}, "orders": orders,
            "success_url": success_url, "cancel_url": cancel_url, **extra}
    return api.post("/api/v1/checkout-sessions", json=body, headers={"Idempotency-Key": key})


def tokenise(sandbox_url, number="4242424242424242"):
    """What the PSP's card field does in its iframe: the number goes to the PSP, never to us."""
    response = loopback.post(f"{sandbox_url}/v1/payment_methods", headers={"Authorization": "Bearer pk_test_sandbox"},
                             data={"type": "card", "card[number]": number, "card[exp_month]": "12",
                                "card[exp_year]": "34", "card[cvc]": "123"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["id"]


class Browser:
    """A buyer's browser on the page: its cookies (CSRF) and the page's own JSON calls."""

    def __init__(self, url):
        self.url = url
        self.http = loopback.Client(timeout=30)
        self.page = self.http.get(url)

    @property
    def csrf(self):
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.page.text)[1]

    def confirm(self, payment_method, *, csrf=True):
        headers = {"X-CSRFToken": self.csrf, "Referer": self.url} if csrf else {}
        return self.http.post(f"{self.url}/confirm", json={"payment_method": payment_method}, headers=headers)

    def status(self):
        return self.http.get(f"{self.url}/status").json()

    def wait(self, predicate, message):
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.status()), message=message)


def test_a_two_seller_cart_paid_on_the_hosted_page(api, sandbox):
    sellers = [onboard(api, "Mugs & Co"), onboard(api, "Tea House")]
    created = create_session(api, sellers)
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["object"] == "checkout_session" and session["id"].startswith("cs_")
    assert (session["status"], session["payment_status"], session["payment_event"]) == ("open", "unpaid", None)
    assert session["url"] == f"{str(api.base_url).rstrip('/')}/pay/{session['id']}"
    replay = create_session(api, sellers)
    assert replay.json() == session and replay.headers["Idempotent-Replayed"] == "true"

    browser = Browser(session["url"])
    page = browser.page
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for text in ("Mugs &amp; Co", "Tea House", "Blue mug × 2", "24.00 EUR", "15.00 EUR", "Pay 39.00 EUR",
                 f"{sandbox}/js/v1/sandbox.js", 'data-publishable-key="pk_test_sandbox"'):
        assert text in page.text, text
    assert loopback.get(f"{sandbox}/js/v1/sandbox.js").headers["content-type"].startswith("application/javascript")

    token = tokenise(sandbox)
    other_tab = Browser(session["url"])  # a second tab, its card form ready too
    assert browser.confirm(token, csrf=False).status_code == 403  # only our page may confirm
    configure(sandbox, latency_ms=[300, 300])  # slow enough to look at the page mid-payment
    first = browser.confirm(token)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "processing"
    refreshed = Browser(session["url"])  # the page reloaded mid-payment: it follows, it does not pay again
    assert 'data-started="true"' in refreshed.page.text and 'id="card-panel" hidden' in refreshed.page.text
    again = other_tab.confirm(tokenise(sandbox, "5555555555554444"))  # the other tab pays too: changes nothing
    assert again.status_code == 200 and again.json()["id"] == session["id"]

    done = browser.wait(lambda s: s["redirect"], "the payment to be decided")
    assert done["status"] == "succeeded"
    assert done["redirect"] == f"https://shop.example/thanks?session={session['id']}"
    assert [o["state_label"] for o in done["orders"]] == ["Paid", "Paid"]
    assert browser.http.get(session["url"]).headers["location"] == done["redirect"]

    assert PaymentEvent.objects.count() == 1 and PaymentOrder.objects.count() == 2
    shown = api.get(f"/api/v1/checkout-sessions/{session['id']}").json()
    assert (shown["status"], shown["payment_status"]) == ("complete", "succeeded")
    assert shown["payment_event"] == CheckoutSession.objects.get(pk=session["id"]).payment_event_id
    assert wallet_selectors.wallet_balance(owner_id=sellers[0], currency="eur") == 2400
    assert wallet_selectors.wallet_balance(owner_id=sellers[1], currency="eur") == 1500
    money = sandbox_money(sandbox)
    assert money["totals"]["eur"] == {**money["totals"]["eur"], "captured": 3900, "count": 2}
    assert money["double_charges"] == []
    assert_audit_clean()


def test_a_declined_card_lands_on_a_page_that_says_which_sellers_were_paid(api, sandbox):
    sellers = [onboard(api, "Mugs & Co"), onboard(api, "Tea House")]
    session = create_session(api, sellers).json()
    browser = Browser(session["url"])
    assert browser.confirm(tokenise(sandbox, "4000000000000002")).status_code == 200
    done = browser.wait(lambda s: s["redirect"], "the payment to be decided")
    assert done["status"] == "failed" and done["redirect"] == f"/pay/{session['id']}/result"
    result = browser.http.get(f"{session['url']}/result")
    assert result.status_code == 200
    assert "Payment failed" in result.text and result.text.count("Not paid") == 2
    assert "Your card was declined." in result.text and "nothing was charged" in result.text
    assert sandbox_money(sandbox)["totals"].get("eur", {}).get("captured", 0) == 0


def test_three_d_secure_from_the_hosted_page(api, sandbox):
    session = create_session(api, [onboard(api, "Mugs & Co")]).json()
    browser = Browser(session["url"])
    assert browser.confirm(tokenise(sandbox, "4000002760003184")).status_code == 200
    asked = browser.wait(lambda s: s["next_action_url"], "the bank's challenge")
    assert asked["next_action_url"].startswith(f"{sandbox}/_sandbox/3ds/pi_")
    assert asked["orders"][0]["state_label"] == "Waiting for your bank's confirmation"
    back_on_page = follow_return(answer_challenge(asked["next_action_url"], "succeed"))
    event = CheckoutSession.objects.get(pk=session["id"]).payment_event_id
    assert back_on_page == f"{session['url']}?payment_event={event}"
    done = browser.wait(lambda s: s["redirect"], "the payment to be decided")
    assert done["status"] == "succeeded"
    assert_audit_clean()


def test_an_expired_session_is_a_clear_page_and_charges_nothing(api, sandbox):
    session = create_session(api, [onboard(api, "Mugs & Co")]).json()
    browser = Browser(session["url"])
    CheckoutSession.objects.filter(pk=session["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = browser.http.get(session["url"])
    assert page.status_code == 410 and "This payment page has expired" in page.text
    refused = browser.confirm(tokenise(sandbox))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "checkout_session_expired"
    assert not PaymentEvent.objects.exists()
    assert api.get(f"/api/v1/checkout-sessions/{session['id']}").json()["status"] == "expired"


def test_cancel_goes_back_to_the_shop_until_the_payment_has_started(api, sandbox):
    session = create_session(api, [onboard(api, "Mugs & Co")]).json()
    browser = Browser(session["url"])
    assert browser.http.get(f"{session['url']}/cancel").headers["location"] == CANCEL
    browser.confirm(tokenise(sandbox))
    assert browser.http.get(f"{session['url']}/cancel").headers["location"] == f"/pay/{session['id']}"


def test_a_card_number_sent_to_us_is_refused_unread(api, sandbox):
    session = create_session(api, [onboard(api, "Mugs & Co")]).json()
    browser = Browser(session["url"])
    refused = browser.confirm("4242 4242 4242 4242")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "card_number"
    assert "4242" not in refused.text
    assert not PaymentEvent.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM payments_checkoutsession WHERE orders::text LIKE '%4242424242%'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize(("change", "param", "code"), [
    ({"success_url": "ftp://shop.example/thanks"}, "success_url", "parameter_invalid"),
    ({"cancel_url": "javascript:alert(1)"}, "cancel_url", "parameter_invalid"),
    ({"success_url": "https://shop.example/" + "a" * 2100}, "success_url", "max_length"),
    ({"orders": [{"seller": "sel_x", "amount": 1000, "currency": "eur",
                  "items": [{"name": "Mug", "quantity": 1, "amount": 999}]}]}, "orders[0].items",
     "items_amount_mismatch"),
])
def test_bad_input_is_a_400_in_the_error_shape(api, sandbox, change, param, code):
    seller = onboard(api, "Mugs & Co")
    body = {"buyer": {"reference": "b"}, "success_url": SUCCESS, "cancel_url": CANCEL,
            "orders": [{"seller": seller, "amount": 1000, "currency": "eur"}]}
    body.update(change)
    if "orders" in change:
        body["orders"][0]["seller"] = seller
    response = api.post("/api/v1/checkout-sessions", json=body, headers={"Idempotency-Key": f"bad-{param}"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert not CheckoutSession.objects.exists()


def test_an_unknown_session_is_a_clear_page(live_server):
    response = loopback.get(f"{live_server.url}/pay/cs_00000000000000000000000000", timeout=5)
    assert response.status_code == 404 and "not valid" in response.text
    assert urlsplit(live_server.url).scheme == "http"


def test_ten_tabs_confirming_at_once_make_one_payment(api, sandbox):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    sellers = [onboard(api, "Mugs & Co"), onboard(api, "Tea House")]
    session = create_session(api, sellers).json()
    tabs = [Browser(session["url"]) for _ in range(10)]
    tokens = [tokenise(sandbox) for _ in tabs]
    barrier = Barrier(len(tabs))

    def pay(n):
        barrier.wait()
        return tabs[n].confirm(tokens[n])

    with ThreadPoolExecutor(len(tabs)) as pool:
        answers = list(pool.map(pay, range(len(tabs))))
    assert [a.status_code for a in answers] == [200] * len(tabs)
    assert PaymentEvent.objects.count() == 1 and PaymentOrder.objects.count() == 2
    tabs[0].wait(lambda s: s["redirect"], "the payment to be decided")
    money = sandbox_money(sandbox)
    assert money["totals"]["eur"]["count"] == 2 and money["double_charges"] == []
    assert_audit_clean()
