"""The shop's side: set itself up at the marketplace, send a cart to the hosted payment page, take
the marketplace's signed webhooks. Only the public API and the signature scheme are used here."""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import ssl
import time
import uuid
from dataclasses import dataclass

import httpx
from django.db import IntegrityError, transaction

from storefront.models import Product, ReceivedEvent, ShopConfig, ShopOrder, ShopSeller

SELLERS = [("ceramics", "Clay & Kiln"), ("tea", "Leaf Street Tea"), ("books", "Second Chapter Books")]
PRODUCTS = [
    ("mug", "ceramics", "Stoneware mug", 1800), ("bowl", "ceramics", "Ramen bowl", 2400),
    ("sencha", "tea", "Sencha, 100 g", 1250), ("chai", "tea", "Masala chai, 100 g", 990),
    ("novel", "books", "A used novel", 700), ("atlas", "books", "Old atlas", 3500),
]
EVENTS = ["checkout.completed", "payment_order.succeeded", "payment_order.failed", "refund.succeeded"]


class ShopError(Exception):
    """The marketplace refused or could not be reached."""


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's context for ``verify=True``, made once: httpx makes a new one for every client, ~55 ms of CPU."""
    return httpx.create_ssl_context()


def _api(config: ShopConfig) -> httpx.Client:
    return httpx.Client(base_url=config.api_base, headers={"Authorization": f"Bearer {config.api_key}"}, timeout=15,
                        verify=_tls())


def _answer(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        error = (response.json().get("error") or {}) if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        raise ShopError(error.get("message") or f"the marketplace answered {response.status_code}")
    return response.json()


def shop_setup(*, api_base: str, api_key: str, webhook_url: str) -> ShopConfig:
    """Onboard the shop's three sellers at the marketplace, list their products, and register the
    shop's webhook endpoint (its secret is shown once: kept here)."""
    ShopConfig.objects.all().delete()
    config = ShopConfig.objects.create(api_base=api_base.rstrip("/"), api_key=api_key)
    with _api(config) as api:
        for key, name in SELLERS:
            seller = _answer(api.post("/api/v1/sellers", json={"name": name, "external_reference": f"shop-{key}"},
                                      headers={"Idempotency-Key": f"shop-seller-{key}"}))
            ShopSeller.objects.update_or_create(key=key, defaults={"name": name, "marketplace_id": seller["id"]})
        endpoint = _answer(api.post("/api/v1/webhook-endpoints", json={
            "url": webhook_url, "enabled_events": EVENTS, "description": "demo shop"}))
    config.webhook_endpoint, config.webhook_secret = endpoint["id"], endpoint["secret"]
    config.save()
    for sku, seller, name, price in PRODUCTS:
        Product.objects.update_or_create(sku=sku, defaults={"seller_id": seller, "name": name, "price": price})
    return config


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> int:
        return self.product.price * self.quantity


def cart_lines(cart: dict[str, int]) -> list[CartLine]:
    products = Product.objects.select_related("seller").in_bulk(list(cart))
    return [CartLine(products[sku], qty) for sku, qty in cart.items() if sku in products and qty > 0]


def cart_checkout(*, cart: dict[str, int], success_url: str, cancel_url: str, buyer: str) -> str:
    """Send the cart to the marketplace's hosted payment page, one order per seller with its items;
    returns the page's URL."""
    lines = cart_lines(cart)
    if not lines:
        raise ShopError("Your cart is empty.")
    by_seller: dict[str, list[CartLine]] = {}
    for line in lines:
        by_seller.setdefault(line.product.seller.marketplace_id, []).append(line)
    orders = [{"seller": seller, "amount": sum(li.total for li in group), "currency": group[0].product.currency,
               "items": [{"name": li.product.name, "quantity": li.quantity, "amount": li.product.price}
                         for li in group]}
              for seller, group in by_seller.items()]
    config = ShopConfig.objects.get()
    with _api(config) as api:
        session = _answer(api.post("/api/v1/checkout-sessions", headers={"Idempotency-Key": str(uuid.uuid4())},
                                   json={"buyer": {"reference": buyer}, "orders": orders,
                                         "success_url": success_url, "cancel_url": cancel_url}))
    ShopOrder.objects.create(checkout_session=session["id"],
                             lines=[{"sku": li.product.sku, "name": li.product.name, "quantity": li.quantity,
                                     "amount": li.total, "seller": li.product.seller.name} for li in lines])
    return session["url"]


# --- Webhooks ----------------------------------------------------------------------------------------
class BadSignature(Exception):
    pass


def verify(*, secret: str, payload: bytes, header: str, tolerance: int = 300) -> dict:
    """The marketplace's signature (Stripe's scheme: ``t=…,v1=HMAC-SHA256(secret, "t.body")``)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts or abs(time.time() - int(parts["t"])) > tolerance:
        raise BadSignature("missing or stale signature")
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + payload, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts["v1"]):
        raise BadSignature("signature mismatch")
    return json.loads(payload)


def webhook_receive(*, payload: bytes, signature: str) -> bool:
    """Take one delivery: verified, recorded once, applied to the shop's order. Returns False for a
    duplicate (answered 200 all the same, so the marketplace stops sending it)."""
    event = verify(secret=ShopConfig.objects.get().webhook_secret, payload=payload, header=signature)
    try:
        with transaction.atomic():
            ReceivedEvent.objects.create(id=event["id"], type=event["type"], payload=event)
    except IntegrityError:
        return False
    obj = event["data"]["object"]
    if event["type"] == "checkout.completed" and obj.get("checkout_session"):
        status = {"succeeded": ShopOrder.Status.PAID, "partially_succeeded": ShopOrder.Status.PARTIALLY_PAID}.get(
            obj["state"], ShopOrder.Status.NOT_PAID)
        paid = [o["seller"] for o in obj["orders"] if o["state"] == "succeeded"]
        names = dict(ShopSeller.objects.values_list("marketplace_id", "name"))
        ShopOrder.objects.filter(checkout_session=obj["checkout_session"]).update(
            status=status, paid_sellers=[names.get(s, s) for s in paid])
    return True
