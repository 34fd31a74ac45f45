"""The demo shop in a real headless Chromium: products from three sellers, a cart, the Buy button, the
marketplace's hosted payment page (with 3-D Secure and a decline), and the shop told by signed webhooks.
``SCREENSHOTS_DIR=docs/screenshots`` also saves the README's screenshots."""
import os
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from conftest import wait_for
from payments import services
from payments.tests.test_checkout_flow import assert_audit_clean, sandbox_money
from payments.tests.test_hosted_page_browser import CHROMIUM, pay_with, press_pay
from storefront.models import ReceivedEvent, ShopOrder
from storefront.services import shop_setup

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium")]


def shot(page, name):
    directory = os.environ.get("SCREENSHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{directory}/{name}.png", full_page=True)


@pytest.fixture
def shop(api, live_server):
    """The shop set up as `make demo` does: its sellers onboarded and its webhook endpoint registered
    through the API, with its own key."""
    key = api.headers["Authorization"].removeprefix("Bearer ")
    shop_setup(api_base=live_server.url, api_key=key, webhook_url=f"{live_server.url}/shop/webhooks")
    return f"{live_server.url}/shop/"


@pytest.fixture
def relay():
    """Celery beat's relay of payments' outbox, every 0.2 s (the suite runs no beat)."""
    stop = threading.Event()

    def loop():
        try:
            while not stop.wait(0.2):
                services.merchant_events_relay()
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


def fill_cart(page, shop, *names):
    page.goto(shop)
    for name in names:
        page.get_by_role("button", name=f"Add {name} to the cart").click()
        page.wait_for_load_state()


def test_a_three_seller_cart_bought_and_the_shop_told(page, shop, relay, sandbox):
    fill_cart(page, shop, "Stoneware mug", "Sencha, 100 g", "Sencha, 100 g", "A used novel")
    assert page.get_by_role("heading", name="Cart (4)").is_visible()
    shot(page, "1-shop")
    started = time.monotonic()
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url("**/pay/cs_*")
    for seller in ("Clay & Kiln", "Leaf Street Tea", "Second Chapter Books"):
        assert page.get_by_role("heading", name=seller).is_visible()
    assert page.get_by_text("Sencha, 100 g × 2").is_visible()
    page.frame_locator("iframe.card-field").locator("#number").fill("4242 4242 4242 4242")
    page.frame_locator("iframe.card-field").locator("#expiry").fill("12 / 34")
    page.frame_locator("iframe.card-field").locator("#cvc").fill("123")
    shot(page, "2-payment-page")
    press_pay(page)
    page.wait_for_url("**/shop/thanks?session=cs_*", timeout=15_000)
    landed = time.monotonic()
    page.get_by_text("Paid: the marketplace told us every seller was paid.").wait_for(timeout=10_000)
    told = time.monotonic()
    print(f"\nBuy to success page: {landed - started:.2f} s (three sellers); success page to the shop's webhook "
          f"shown: {told - landed:.2f} s")
    shot(page, "4-success")
    order = ShopOrder.objects.get()
    assert order.status == "paid" and len(order.paid_sellers) == 3
    wait_for(lambda: ReceivedEvent.objects.filter(type="payment_order.succeeded").count() == 3,
             message="the three payment_order.succeeded webhooks")
    assert sandbox_money(sandbox)["totals"]["eur"]["captured"] == 1800 + 2 * 1250 + 700
    assert_audit_clean()


def test_three_d_secure_from_the_shop(page, shop, relay, sandbox):
    fill_cart(page, shop, "Ramen bowl")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url("**/pay/cs_*")
    pay_with(page, "4000 0027 6000 3184")
    page.wait_for_url("**/_sandbox/3ds/pi_*", timeout=15_000)
    shot(page, "3-challenge")
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url("**/shop/thanks?session=cs_*", timeout=15_000)
    page.get_by_text("Paid: the marketplace told us every seller was paid.").wait_for(timeout=10_000)
    assert ShopOrder.objects.get().status == "paid"


def test_a_declined_card_from_the_shop(page, shop, relay, sandbox):
    fill_cart(page, shop, "Stoneware mug", "Old atlas")
    page.get_by_role("button", name="Buy").click()
    page.wait_for_url("**/pay/cs_*")
    pay_with(page, "4000 0000 0000 0002")
    page.wait_for_url("**/pay/cs_*/result", timeout=15_000)
    assert page.get_by_role("heading", name="Payment failed").is_visible()
    shot(page, "5-failure")
    wait_for(lambda: ShopOrder.objects.get().status == "not_paid", message="the shop told of the failure")
    page.get_by_role("link", name="Return to the shop").click()
    page.wait_for_url("**/shop/")
