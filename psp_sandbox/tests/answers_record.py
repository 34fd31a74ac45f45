"""A fixed set of sandbox calls run in-process with ids and clocks made deterministic: every answer (status,
headers but ``Date``, body) and every stored row, as text. ``test_same_answers`` compares a run of this tree
with the record the sandbox wrote before its CPU work (``same_answers.json.gz``, main at 43ccacb), byte for byte.

    PYTHONPATH=<tree> .venv/bin/python psp_sandbox/tests/answers_record.py OUT.json[.gz]   # <tree>'s record

The calls cover what the drain sends (a customer with ``payment_method``, confirmed PaymentIntents) and the
paths beside it: declines, 3-D Secure, processing, manual capture, cancel, refunds, disputes' scheduling,
saved 500s, replays, conflicting keys, validation errors, reads and the customer and PaymentMethod calls.
"""

from __future__ import annotations

import contextvars
import gzip
import io
import json
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

CLOCK = 1_796_000_000.25
HEADERS = {
    "Host": "127.0.0.1:12111",
    "User-Agent": "Stripe/v1 PythonBindings/16.1.0",
    "Authorization": "Bearer sk_test_golden",
    "Content-Type": "application/x-www-form-urlencoded",
    "Stripe-Version": "2026-10-28.endive",
}
VISA_PI = "amount=1500&currency=usd&payment_method=pm_card_visa&allowed_payment_method_types[0]=card&confirm=true"
# (name, method, path, form body, idempotency key): ``{name}`` is the id an earlier answer named ``name``
# carried, ``{name_charge}`` its ``latest_charge``.
CALLS: list[tuple[str, str, str, str, str | None]] = [
    ("cus", "POST", "/v1/customers",
     "metadata[buyer_reference]=b-1&email=b1%40example.com&payment_method=pm_card_visa", "k-cus"),
    ("cus_plain", "POST", "/v1/customers", "name=Ann&description=d&phone=123&address[city]=Paris", "k-cus2"),
    ("pi", "POST", "/v1/payment_intents",
     VISA_PI + "&metadata[payment_order_id]=ord_1&metadata[payment_event_id]=pe_1&off_session=true&customer={cus}",
     "k-pi"),
    ("pi_replay", "POST", "/v1/payment_intents",
     VISA_PI + "&metadata[payment_order_id]=ord_1&metadata[payment_event_id]=pe_1&off_session=true&customer={cus}",
     "k-pi"),
    ("pi_conflict", "POST", "/v1/payment_intents", VISA_PI + "&metadata[payment_order_id]=ord_x", "k-pi"),
    ("pi2", "POST", "/v1/payment_intents", VISA_PI + "&metadata[payment_order_id]=ord_2&customer={cus}", "k-pi2"),
    ("declined", "POST", "/v1/payment_intents",
     "amount=700&currency=eur&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true"
     "&allowed_payment_method_types[0]=card&off_session=true", "k-dec"),
    ("declined_replay", "POST", "/v1/payment_intents",
     "amount=700&currency=eur&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true"
     "&allowed_payment_method_types[0]=card&off_session=true", "k-dec"),
    ("three_ds", "POST", "/v1/payment_intents",
     "amount=900&currency=usd&payment_method=pm_card_threeDSecure2Required&confirm=true"
     "&return_url=https%3A%2F%2Fshop.example%2Fback", "k-3ds"),
    ("three_ds_sdk", "POST", "/v1/payment_intents",
     "amount=901&currency=usd&payment_method=pm_card_threeDSecureRequired&confirm=true"
     "&allowed_payment_method_types[0]=card", "k-3ds2"),
    ("processing", "POST", "/v1/payment_intents",
     "amount=1200&currency=usd&payment_method=pm_sandbox_processing&confirm=true&allowed_payment_method_types[0]=card",
     "k-proc"),
    ("saved_500", "POST", "/v1/payment_intents",
     "amount=1300&currency=usd&payment_method=pm_sandbox_server_error&confirm=true"
     "&allowed_payment_method_types[0]=card", "k-500"),
    ("saved_500_replay", "POST", "/v1/payment_intents",
     "amount=1300&currency=usd&payment_method=pm_sandbox_server_error&confirm=true"
     "&allowed_payment_method_types[0]=card", "k-500"),
    ("manual", "POST", "/v1/payment_intents",
     VISA_PI.replace("1500", "2500") + "&capture_method=manual&description=held", "k-man"),
    ("capture", "POST", "/v1/payment_intents/{manual}/capture", "", "k-cap"),
    ("to_cancel", "POST", "/v1/payment_intents",
     "amount=300&currency=jpy&allowed_payment_method_types[0]=card&metadata[a]=b", "k-unconf"),
    ("cancel", "POST", "/v1/payment_intents/{to_cancel}/cancel", "cancellation_reason=abandoned", "k-cancel"),
    ("dispute_card", "POST", "/v1/payment_intents",
     "amount=4000&currency=usd&payment_method=pm_card_createDispute&confirm=true&allowed_payment_method_types[0]=card"
     "&off_session=true", "k-disp"),
    ("refund", "POST", "/v1/refunds", "payment_intent={pi}&amount=500&reason=requested_by_customer", "k-ref"),
    ("refund_charge", "POST", "/v1/refunds", "charge={pi2_charge}", "k-ref2"),
    ("pm", "POST", "/v1/payment_methods",
     "type=card&card[number]=4000056655665556&card[exp_month]=4&card[exp_year]=2039&card[cvc]=123"
     "&billing_details[name]=Zed", "k-pm"),
    ("attach", "POST", "/v1/payment_methods/{pm}/attach", "customer={cus_plain}", "k-att"),
    ("pi_attached", "POST", "/v1/payment_intents",
     "amount=800&currency=gbp&payment_method={pm}&customer={cus_plain}&confirm=true&off_session=true"
     "&allowed_payment_method_types[0]=card", "k-pi-att"),
    ("no_key", "POST", "/v1/customers", "email=nokey%40example.com", None),
    ("bad_amount", "POST", "/v1/payment_intents", "amount=-5&currency=usd", "k-bad"),
    ("bad_customer", "POST", "/v1/payment_intents", VISA_PI + "&customer=cus_nope", "k-bad2"),
    ("unknown_param", "POST", "/v1/customers", "colour=blue", "k-bad3"),
    ("get_pi", "GET", "/v1/payment_intents/{pi}", "", None),
    ("get_charge", "GET", "/v1/charges/{pi_charge}", "", None),
    ("get_declined_charge", "GET", "/v1/charges/{declined_charge}", "", None),
    ("get_customer", "GET", "/v1/customers/{cus}", "", None),
    ("get_pm", "GET", "/v1/payment_methods/{pm}", "", None),
    ("get_refunds", "GET", "/v1/refunds", "", None),
    ("search", "GET", "/v1/payment_intents/search", "query=metadata%5B%27payment_order_id%27%5D%3A%27ord_1%27", None),
    ("not_found", "GET", "/v1/payment_intents/pi_missing", "", None),
    ("bad_path", "POST", "/v1/nothing_here", "", "k-404"),
]


def _request(sb: Any, method: str, path: str, body: str, key: str | None) -> bytes:
    """One request through the sandbox's ``Handler`` as the event loop runs it (``loop_steps``), waits skipped."""
    from psp_sandbox.loop import plain_request
    from psp_sandbox.server import Handler

    if method == "GET" and body:
        path, body = f"{path}?{body}", ""
    headers = {**HEADERS, **({"Idempotency-Key": key} if key else {}), "Content-Length": str(len(body))}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    handler = Handler.__new__(Handler)
    handler.server, handler.client_address = sb.httpd, ("127.0.0.1", 1)
    handler.request = handler.connection = None
    handler.rfile, handler.wfile = io.BytesIO((head + body).encode()), io.BytesIO()
    handler.close_connection = True
    # As the loop marks a head it checked (a tree before ``head_checked`` reads every head line by line).
    handler.head_checked = plain_request(head.removesuffix("\r\n\r\n").encode()) is not None
    ctx = contextvars.copy_context()
    steps = ctx.run(handler.loop_steps)
    while ctx.run(next, steps, None) is not None:
        pass
    return handler.wfile.getvalue()


def _answer(raw: bytes) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    return {"status": lines[0], "headers": [line for line in lines[1:] if not line.startswith("Date:")],
            "body": body.decode()}


def _ids(name: str, body: str, ids: dict[str, str]) -> None:
    try:
        obj = json.loads(body)
    except ValueError:
        return
    obj = obj.get("error", {}).get("payment_intent") or obj if isinstance(obj, dict) else {}
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        ids[name] = obj["id"]
        if isinstance(obj.get("latest_charge"), str):
            ids[f"{name}_charge"] = obj["latest_charge"]


def _tables(path: str) -> dict[str, list[list[Any]]]:
    db = sqlite3.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {name: [list(r) for r in db.execute(f"SELECT * FROM {name} ORDER BY rowid")] for name in names}
    db.close()
    return out


def record() -> dict[str, Any]:
    """The calls' answers and the stored rows (ids from a seeded generator, the clock fixed)."""
    from psp_sandbox import store
    from psp_sandbox.server import Sandbox

    rng = random.Random(8)
    # The recording's own environment: no webhook endpoint (``make test`` exports one for the stack), the
    # default secret; whatever the caller's shell says.
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.dict(os.environ, {"PSP_SANDBOX_WEBHOOK_URL": "",
                                         "PSP_SANDBOX_WEBHOOK_SECRET": "whsec_sandbox_secret"}), \
            mock.patch.object(secrets, "token_bytes", lambda n=32: rng.randbytes(n)), \
            mock.patch.object(time, "time", lambda: CLOCK):
        store._chars.clear()
        sb = Sandbox(f"{tmp}/golden.sqlite3", port=0)
        answers, ids = [], {}
        try:
            for name, method, path, body, key in CALLS:
                answer = _answer(_request(sb, method, path.format_map(ids), body.format_map(ids), key))
                _ids(name, answer["body"], ids)
                answers.append({"name": name, **answer})
            sb.api.complete_processing(now=CLOCK + 3600)
            sb.api.complete_challenge(ids["three_ds"], True)
            sb.api.complete_challenge(ids["three_ds_sdk"], False)
        finally:
            sb.httpd.server_close()
            sb.store.close()
        tables = _tables(f"{tmp}/golden.sqlite3")
        store._chars.clear()
    return {"answers": answers, "tables": tables}


def text(rec: dict[str, Any]) -> str:
    """The record as the file holds it."""
    return json.dumps(rec, indent=1, ensure_ascii=False) + "\n"


def load(path: Path) -> dict[str, Any]:
    """A record written by ``__main__`` (gzipped if the name ends ``.gz``)."""
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    data = text(record()).encode()
    out.write_bytes(gzip.compress(data, mtime=0) if out.suffix == ".gz" else data)
