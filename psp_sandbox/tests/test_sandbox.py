"""End-to-end tests: the sandbox as a real subprocess, driven by the official stripe SDK."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from payments.psp.http_client import PSPHttpClient

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_test_secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``python -m psp_sandbox`` on a free port with a temp db; stop it after."""
    tmp = tmp_path_factory.mktemp("psp_sandbox")
    port = _free_port()
    env = {
        **os.environ,
        "PSP_SANDBOX_WEBHOOK_URL": "",
        "PSP_SANDBOX_WEBHOOK_SECRET": SECRET,
    }
    log = (tmp / "sandbox.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "psp_sandbox",
            "--port",
            str(port),
            "--db",
            str(tmp / "db" / "s.sqlite3"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url + "/_sandbox/health", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("sandbox did not start: " + (tmp / "sandbox.log").read_text()) from None
            time.sleep(0.05)
    yield url
    proc.terminate()
    try:
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def sb_call(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call a /_sandbox endpoint (POST when a body is given)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


@pytest.fixture
def url(sandbox_url: str) -> str:
    """Fresh sandbox state for every test."""
    sb_call(sandbox_url, "/_sandbox/reset", {})
    return sandbox_url


def make_client(url: str, timeout: float = 5, api_key: str = "sk_test_sandbox") -> stripe.StripeClient:
    """A StripeClient exactly as the application configures it."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": url},
        max_network_retries=0,
        http_client=PSPHttpClient(api_base=url, timeout=timeout),
    )


@pytest.fixture
def client(url: str) -> stripe.StripeClient:
    return make_client(url)


def create(
    client: stripe.StripeClient,
    pm: str = "pm_card_visa",
    amount: int = 1000,
    key: str | None = None,
    po: str | None = None,
) -> stripe.PaymentIntent:
    """Create + confirm a payment intent as the adapter does; ``key``/``po`` default to fresh values."""
    po = po or "po_" + uuid.uuid4().hex[:10]
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": pm,
            "allowed_payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
            "metadata": {"payment_order_id": po},
        },
        options={"idempotency_key": key or po},
    )


def charges_for(url: str, key: str) -> list[dict[str, Any]]:
    return [c for c in sb_call(url, "/_sandbox/charges")["charges"] if c["idempotency_key"] == key]


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- payments -------------------------------------------------------------------------


def test_success_retrieve_search(url: str, client: stripe.StripeClient) -> None:
    sb_call(url, "/_sandbox/config", {"search_lag_s": 0})
    pi = create(client, key="k-success", po="po_success")
    assert pi.id.startswith("pi_") and pi.status == "succeeded"
    assert pi.amount == pi.amount_received == 1000 and pi.currency == "usd"
    assert pi.latest_charge.startswith("ch_") and pi.metadata["payment_order_id"] == "po_success"
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    found = client.v1.payment_intents.search(params={"query": "metadata['payment_order_id']:'po_success'"})
    assert [p.id for p in found.data] == [pi.id]
    report = sb_call(url, "/_sandbox/charges")
    assert report["totals"] == {"usd": {"captured": 1000, "refunded": 0, "count": 1}}
    assert report["charges"][0]["payment_order_id"] == "po_success" and report["charges"][0]["created"] > 0


@pytest.mark.parametrize(
    ("pm", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
        ),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ],
)
def test_declines(url: str, client: stripe.StripeClient, pm: str, code: str, decline_code: str) -> None:
    key = "k-" + pm
    with pytest.raises(stripe.CardError) as exc:
        create(client, pm=pm, key=key, po=key)
    err = exc.value
    assert err.http_status == 402 and err.code == code and err.error.decline_code == decline_code
    assert err.error.payment_intent.status == "requires_payment_method"
    # Declines are stored: the replay is the same decline for the same payment intent.
    with pytest.raises(stripe.CardError) as again:
        create(client, pm=pm, key=key, po=key)
    assert again.value.error.payment_intent.id == err.error.payment_intent.id
    assert again.value.headers.get("Idempotent-Replayed") == "true"
    assert sb_call(url, "/_sandbox/charges")["totals"] == {}


def test_idempotent_replay(url: str, client: stripe.StripeClient) -> None:
    first = create(client, key="k-replay", po="po_replay")
    second = create(client, key="k-replay", po="po_replay")
    assert second.id == first.id
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(charges_for(url, "k-replay")) == 1


def test_key_reuse_with_other_params(url: str, client: stripe.StripeClient) -> None:
    create(client, key="k-reuse", po="po_reuse", amount=1000)
    with pytest.raises(stripe.IdempotencyError):
        create(client, key="k-reuse", po="po_reuse", amount=2000)
    assert len(charges_for(url, "k-reuse")) == 1


def test_concurrent_same_key_makes_one_charge(url: str) -> None:
    sb_call(url, "/_sandbox/config", {"latency_ms": [20, 40]})
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            res: Any = create(make_client(url), key="k-concurrent", po="po_concurrent").id
        except stripe.StripeError as exc:
            res = exc
        with lock:
            results.append(res)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {r for r in results if isinstance(r, str)}
    errors = [r for r in results if not isinstance(r, str)]
    assert len(ids) == 1
    assert all(isinstance(e, stripe.APIError) and e.http_status == 409 for e in errors)
    assert len(charges_for(url, "k-concurrent")) == 1
    assert sb_call(url, "/_sandbox/charges")["double_charges"] == []


def test_flaky_then_success(url: str, client: stripe.StripeClient) -> None:
    for _ in range(2):  # a 500 before execution (Stripe's lock timeout): not saved, retry runs again
        with pytest.raises(stripe.APIError) as exc:
            create(client, pm="pm_sandbox_flaky", key="k-flaky", po="po_flaky")
        assert exc.value.http_status == 500 and exc.value.headers.get("Stripe-Should-Retry") == "true"
    assert charges_for(url, "k-flaky") == []
    pi = create(client, pm="pm_sandbox_flaky", key="k-flaky", po="po_flaky")
    assert pi.status == "succeeded" and len(charges_for(url, "k-flaky")) == 1


def test_server_error_is_saved_and_replayed(url: str, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.APIError) as exc:
        create(client, pm="pm_sandbox_server_error", key="k-500", po="po_500")
    assert exc.value.http_status == 500 and exc.value.headers.get("Stripe-Should-Retry") == "false"
    assert exc.value.headers.get("Idempotent-Replayed") is None
    with pytest.raises(stripe.APIError) as again:  # the same key answers the saved 500
        create(client, pm="pm_sandbox_server_error", key="k-500", po="po_500")
    assert again.value.http_status == 500 and again.value.headers.get("Idempotent-Replayed") == "true"
    assert again.value.request_id != exc.value.request_id
    assert charges_for(url, "k-500") == []
    sb_call(url, "/_sandbox/config", {"search_lag_s": 0})
    assert client.v1.payment_intents.search(params={"query": "metadata['payment_order_id']:'po_500'"}).data == []


def test_timeout_charge_is_made(url: str) -> None:
    sb_call(url, "/_sandbox/config", {"timeout_delay_s": 3})
    with pytest.raises(stripe.APIConnectionError):
        create(
            make_client(url, timeout=1),
            pm="pm_sandbox_timeout",
            key="k-timeout",
            po="po_timeout",
        )
    client = make_client(url)
    sb_call(url, "/_sandbox/config", {"search_lag_s": 0})
    found = client.v1.payment_intents.search(params={"query": "metadata['payment_order_id']:'po_timeout'"})
    assert [p.status for p in found.data] == ["succeeded"]
    assert client.v1.payment_intents.retrieve(found.data[0].id).status == "succeeded"
    retry = create(client, pm="pm_sandbox_timeout", key="k-timeout", po="po_timeout")
    assert retry.id == found.data[0].id and len(charges_for(url, "k-timeout")) == 1


def test_connection_drop_after_charge(url: str, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.APIConnectionError):
        create(client, pm="pm_sandbox_connection_drop", key="k-drop", po="po_drop")
    retry = create(client, pm="pm_sandbox_connection_drop", key="k-drop", po="po_drop")
    assert retry.status == "succeeded" and len(charges_for(url, "k-drop")) == 1


@pytest.mark.parametrize(
    ("pm", "final"),
    [
        ("pm_sandbox_processing", "succeeded"),
        ("pm_sandbox_processing_fail", "requires_payment_method"),
    ],
)
def test_processing_completes_later(url: str, client: stripe.StripeClient, pm: str, final: str) -> None:
    sb_call(url, "/_sandbox/config", {"processing_delay_s": 0.3})
    pi = create(client, pm=pm)
    assert pi.status == "processing"
    done = wait_for(lambda: (p := client.v1.payment_intents.retrieve(pi.id)).status != "processing" and p)
    assert done.status == final
    expected_charge = "succeeded" if final == "succeeded" else "failed"
    assert [c["status"] for c in sb_call(url, "/_sandbox/charges")["charges"]] == [expected_charge]


# -- refunds --------------------------------------------------------------------------


def test_refunds_partial_then_over_refund(url: str, client: stripe.StripeClient) -> None:
    pi = create(client, amount=1000)
    r1 = client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 300},
        options={"idempotency_key": "rf1"},
    )
    assert r1.status == "succeeded" and r1.amount == 300 and r1.payment_intent == pi.id
    assert client.v1.refunds.retrieve(r1.id).amount == 300
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(
            params={"payment_intent": pi.id, "amount": 800},
            options={"idempotency_key": "rf2"},
        )
    assert exc.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"payment_intent": pi.id}, options={"idempotency_key": "rf3"})
    assert rest.amount == 700
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": pi.id}, options={"idempotency_key": "rf4"})
    assert exc.value.code == "charge_already_refunded"
    # Replaying the first refund does not refund again.
    again = client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 300},
        options={"idempotency_key": "rf1"},
    )
    assert again.id == r1.id
    report = sb_call(url, "/_sandbox/charges")
    assert report["totals"]["usd"] == {"captured": 1000, "refunded": 1000, "count": 1}
    assert len(report["refunds"]) == 2


@pytest.mark.parametrize("pm", ["pm_card_refundFail", "card_number"])
def test_refund_of_a_refund_fail_card_is_pending_then_fails(
    url: str, client: stripe.StripeClient, receiver: _Receiver, pm: str
) -> None:
    sb_call(url, "/_sandbox/config", {"webhook_url": receiver.url, "refund_failure_delay_s": 0.3})
    if pm == "card_number":  # Stripe's number for the same card behaves the same
        pm = client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": "4000000000005126", "exp_month": 12, "exp_year": 2040}}
        ).id
    pi = create(client, pm=pm, amount=1000)
    assert pi.status == "succeeded"  # the charge itself succeeds
    refund = client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 400}, options={"idempotency_key": "f1"}
    )
    assert refund.status == "pending" and refund.failure_reason is None
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 400

    failed = wait_for(lambda: (r := client.v1.refunds.retrieve(refund.id)).status == "failed" and r, timeout=5)
    assert failed.failure_reason == "expired_or_canceled_card" and failed.failure_balance_transaction
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0  # refundable again
    events = wait_for(lambda: {"refund.updated", "refund.failed"} <= {e.type for e in receiver.events()}
                      and receiver.events())
    for kind in ("refund.updated", "refund.failed"):
        obj = next(e for e in events if e.type == kind).data.object
        assert (obj.id, obj.status, obj.failure_reason) == (refund.id, "failed", "expired_or_canceled_card")
    # The idempotent replay answers the original (pending) response, as Stripe does.
    again = client.v1.refunds.create(
        params={"payment_intent": pi.id, "amount": 400}, options={"idempotency_key": "f1"}
    )
    assert (again.id, again.status) == (refund.id, "pending")
    report = sb_call(url, "/_sandbox/charges")
    assert report["totals"]["usd"] == {"captured": 1000, "refunded": 0, "count": 1}
    assert [r["status"] for r in report["refunds"]] == ["failed"]
    # The whole amount can be refunded again (and fails again: it is the card's behaviour).
    whole = client.v1.refunds.create(params={"payment_intent": pi.id}, options={"idempotency_key": "f2"})
    assert (whole.amount, whole.status) == (1000, "pending")


# -- errors, config, report -----------------------------------------------------------


def test_auth_and_validation(url: str, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.AuthenticationError):
        make_client(url, api_key="sk_live_nope").v1.payment_intents.retrieve("pi_x")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.retrieve("pi_missing")
    assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, pm="card_1234")
    assert exc.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        create(client, amount=0)
    assert exc.value.param == "amount"
    with pytest.raises(urllib.error.HTTPError) as http_err:
        sb_call(url, "/_sandbox/config", {"no_such_key": 1})
    assert http_err.value.code == 400


def test_chaos_rates_apply_to_good_cards(url: str, client: stripe.StripeClient) -> None:
    sb_call(url, "/_sandbox/config", {"error_rate": 1.0, "seed": 7})
    with pytest.raises(stripe.APIError):
        create(client, key="k-chaos", po="po_chaos")
    cfg = sb_call(url, "/_sandbox/config", {"error_rate": 0.0, "decline_rate": 1.0})
    assert cfg["seed"] == 7 and cfg["decline_rate"] == 1.0
    with pytest.raises(stripe.APIError) as saved:
        create(client, key="k-chaos", po="po_chaos")  # the injected 500 was saved against the key
    assert saved.value.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.CardError):
        create(client, key="k-chaos-decline")
    sb_call(url, "/_sandbox/config", {"decline_rate": 0.0, "transient_error_rate": 1.0})
    with pytest.raises(stripe.APIError) as transient:
        create(client, key="k-chaos-t", po="po_chaos_t")
    assert transient.value.headers.get("Stripe-Should-Retry") == "true"
    sb_call(url, "/_sandbox/config", {"transient_error_rate": 0.0})
    assert create(client, key="k-chaos-t", po="po_chaos_t").status == "succeeded"  # not saved
    sb_call(url, "/_sandbox/config", {"drop_rate": 1.0})
    with pytest.raises(stripe.APIConnectionError):
        create(client, key="k-chaos-2")
    sb_call(url, "/_sandbox/config", {"drop_rate": 0.0})
    assert create(client, key="k-chaos-2").status == "succeeded"
    sb_call(url, "/_sandbox/reset", {})
    assert sb_call(url, "/_sandbox/config")["decline_rate"] == 0.0


def test_double_charges_are_reported(url: str, client: stripe.StripeClient) -> None:
    create(client, key="k-a", po="po_double")
    create(client, key="k-b", po="po_double")
    (double,) = sb_call(url, "/_sandbox/charges")["double_charges"]
    assert double["key_type"] == "payment_order_id" and double["key"] == "po_double"
    assert double["count"] == 2 and double["amount"] == 2000


# -- webhooks -------------------------------------------------------------------------


class _Receiver:
    """A tiny webhook endpoint that records deliveries and can fail the first N."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[str, str]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 500
                    else:
                        receiver.received.append((body, self.headers["Stripe-Signature"]))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list[stripe.Event]:
        return [stripe.Webhook.construct_event(body, sig, SECRET) for body, sig in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def test_webhook_signed_and_verified(url: str, client: stripe.StripeClient, receiver: _Receiver) -> None:
    sb_call(
        url,
        "/_sandbox/config",
        {"webhook_url": receiver.url, "processing_delay_s": 0.2},
    )
    pi = create(client)
    events = wait_for(lambda: len(receiver.events()) >= 3 and receiver.events())
    assert [e.type for e in events] == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    assert events[2].data.object.id == pi.id and events[0].data.object.status == "requires_confirmation"
    processing = create(client, pm="pm_sandbox_processing")
    client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 100})
    types = {"payment_intent.processing", "refund.created", "charge.refunded"}
    wait_for(
        lambda: (
            types | {"payment_intent.succeeded"} <= {e.type for e in receiver.events()}
            and sum(e.type == "payment_intent.succeeded" for e in receiver.events()) == 2
        )
    )
    assert processing.id in {e.data.object.id for e in receiver.events() if e.type == "payment_intent.succeeded"}
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(receiver.received[0][0], receiver.received[0][1], "whsec_wrong")
    listed = sb_call(url, "/_sandbox/events")["events"]
    assert all(e["status"] == "delivered" and e["attempts"][0]["status_code"] == 200 for e in listed)


def test_webhook_duplicates_retries_and_resend(url: str, client: stripe.StripeClient, receiver: _Receiver) -> None:
    sb_call(
        url,
        "/_sandbox/config",
        {"webhook_url": receiver.url, "webhook_duplicate_rate": 1.0},
    )
    create(client)
    events = wait_for(lambda: len(receiver.received) >= 6 and receiver.events())  # 3 events, each twice
    assert events[0].id == events[1].id and len({e.id for e in events}) == 3
    # Retries with backoff until the endpoint answers 2xx.
    sb_call(
        url,
        "/_sandbox/config",
        {"webhook_duplicate_rate": 0.0, "webhook_retry_base_s": 0.05},
    )
    receiver.received.clear()
    receiver.fail_first = 2
    client.v1.customers.create()  # one event: customer.created
    wait_for(lambda: receiver.received)
    (listed,) = [e for e in sb_call(url, "/_sandbox/events")["events"] if e["tries"] == 3]
    assert [a["status_code"] for a in listed["attempts"]] == [500, 500, 200]
    # Manual resend.
    sb_call(url, f"/_sandbox/events/{listed['id']}/resend", {})
    wait_for(lambda: len(receiver.received) == 2)
    assert receiver.events()[1].id == listed["id"]


def test_webhook_reorder(url: str, client: stripe.StripeClient, receiver: _Receiver) -> None:
    sb_call(
        url,
        "/_sandbox/config",
        {"webhook_url": receiver.url, "webhook_reorder": True, "seed": 11, "webhook_reorder_window_s": 0.5},
    )
    created = [create(client, po=f"po_order_{i}").id for i in range(10)]
    wait_for(lambda: len(receiver.received) == 30)  # created, charge.succeeded, succeeded per payment
    delivered = [e.data.object.id for e in receiver.events() if e.type == "payment_intent.succeeded"]
    assert sorted(delivered) == sorted(created) and delivered != created
