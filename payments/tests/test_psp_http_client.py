"""The adapter's HTTP client (``payments.psp.http_client.PSPHttpClient``) against the real sandbox: timeouts,
connections the server closed, what may and may not be sent again, headers and errors as the SDK reads them,
HTTPS and proxies, one keep-alive connection per thread."""
from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from conftest import ROOT, _answers, _stop, free_port, wait_for
from core.tests import loopback
from payments.psp import http_client as http_client_module
from payments.psp.base import PaymentRequest, PaymentStatus, PSPRetryableError, PSPUnknownOutcome
from payments.psp.http_client import PSPHttpClient
from payments.psp.stripe_adapter import StripeAdapter
from payments.tests.test_checkout_flow import sandbox_money

pytestmark = pytest.mark.integration

SEARCH = "metadata['payment_order_id']:'nothing'"


def configure(url, **config):
    loopback.post(f"{url}/_sandbox/config", json=config, timeout=5).raise_for_status()


def adapter(url, *, timeout=5.0):
    client = PSPHttpClient(api_base=url, timeout=timeout)
    return StripeAdapter(api_base=url, http_client=client), client


def payment(key, *, payment_method="pm_card_visa", amount=1000):
    return PaymentRequest(idempotency_key=key, payment_order_id=key, amount=amount, currency="usd",
                          payment_method=payment_method)


def connection_of(client, url):
    return client._thread_local.connections[url]


class OwnSandbox:
    """A sandbox process of this test's own, which can be stopped and started again on the same port and
    storage (a PSP restart: every kept-alive connection to it is closed by the server)."""

    def __init__(self, tmp_path):
        self.port, self.db, self.proc = free_port(), tmp_path / "sandbox.sqlite3", None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "psp_sandbox", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--db", str(self.db)], cwd=ROOT)
        wait_for(lambda: self.proc.poll() is not None or _answers(f"{self.url}/_sandbox/config"), message="sandbox")
        assert self.proc.poll() is None

    def stop(self):
        _stop(self.proc)


@pytest.fixture
def own_sandbox(tmp_path):
    sandbox = OwnSandbox(tmp_path)
    sandbox.start()
    yield sandbox
    sandbox.stop()


def test_a_read_timeout_is_the_sdks_connection_error_and_the_same_key_finds_the_one_charge(sandbox):
    configure(sandbox, timeout_delay_s=3)
    psp, _ = adapter(sandbox, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(PSPUnknownOutcome, match="APIConnectionError"):
        psp.create_payment(payment("ord_http_timeout", payment_method="pm_sandbox_timeout"))
    assert time.monotonic() - started < 2.5  # bounded by the client's timeout, not the PSP's 3 s
    again = StripeAdapter(api_base=sandbox).create_payment(
        payment("ord_http_timeout", payment_method="pm_sandbox_timeout"))
    assert again.status is PaymentStatus.SUCCEEDED
    assert len(sandbox_money(sandbox)["charges"]) == 1


def test_a_connect_timeout_is_bounded_too():
    """A listener whose backlog is full never completes the handshake: the connect waits, up to the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fillers = []
        for _ in range(4):  # fill the accept queue (Linux takes backlog + 1 and then drops SYNs)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        try:
            psp, _ = adapter(url, timeout=0.5)
            started = time.monotonic()
            with pytest.raises(PSPUnknownOutcome, match="timed out"):
                psp.retrieve_payment("pi_nothing")
            assert time.monotonic() - started < 2.0
        finally:
            for filler in fillers:
                filler.close()


def test_a_connection_the_restarted_psp_closed_is_reopened_before_it_carries_a_payment(own_sandbox, monkeypatch):
    psp, client = adapter(own_sandbox.url)
    psp.find_payment("nothing")
    first = connection_of(client, own_sandbox.url).sock
    assert first is not None  # kept alive
    own_sandbox.stop()
    own_sandbox.start()
    checks = []
    check = http_client_module._dropped
    monkeypatch.setattr(http_client_module, "_dropped", lambda sock: checks.append(check(sock)) or checks[-1])
    paid = psp.create_payment(payment("ord_http_restart"))  # no error: the closed connection was not used
    assert checks == [True]  # found closed before anything was written to it
    assert paid.status is PaymentStatus.SUCCEEDED
    second = connection_of(client, own_sandbox.url).sock
    assert second is not None and second is not first
    assert len(sandbox_money(own_sandbox.url)["charges"]) == 1


def test_on_a_connection_found_dead_a_get_is_sent_again_a_post_only_if_it_never_fully_left(own_sandbox,
                                                                                            monkeypatch):
    """Without the check before re-use (as if the server closed the connection just after it), requests go out
    on a dead connection. A GET (one write, then no answer) is sent again on a new connection: it moves nothing.
    A POST (headers, then its body) is sent again only if writing it failed, so the server never had all of it;
    if it was all written and no answer came, it raises (in doubt: our retry path sends it again, same key)."""
    psp, client = adapter(own_sandbox.url)
    psp.find_payment("nothing")
    monkeypatch.setattr(http_client_module, "_dropped", lambda sock: False)
    own_sandbox.stop()
    own_sandbox.start()
    dead = connection_of(client, own_sandbox.url).sock
    assert psp.find_payment("nothing") is None  # answered all the same
    assert connection_of(client, own_sandbox.url).sock not in (None, dead)

    own_sandbox.stop()
    own_sandbox.start()
    try:
        paid = psp.create_payment(payment("ord_http_dead"))
    except PSPUnknownOutcome:  # all of it was written before the reset came back: never sent again
        assert sandbox_money(own_sandbox.url)["charges"] == []
        paid = psp.create_payment(payment("ord_http_dead"))  # our retry path: the same key
    assert paid.status is PaymentStatus.SUCCEEDED and len(sandbox_money(own_sandbox.url)["charges"]) == 1


def test_a_charge_whose_answer_is_lost_on_a_kept_alive_connection_raises_and_its_key_replays_it(sandbox):
    psp, client = adapter(sandbox)
    psp.find_payment("nothing")
    assert connection_of(client, sandbox).sock is not None  # the POST goes out on a re-used connection
    with pytest.raises(PSPUnknownOutcome, match="APIConnectionError"):
        psp.create_payment(payment("ord_http_drop", payment_method="pm_sandbox_connection_drop"))
    assert sandbox_money(sandbox)["faults"].get("drop_after_charge") == 1
    again = psp.create_payment(payment("ord_http_drop", payment_method="pm_sandbox_connection_drop"))
    assert again.status is PaymentStatus.SUCCEEDED and len(sandbox_money(sandbox)["charges"]) == 1


def test_headers_status_and_body_reach_the_sdk_as_it_reads_them(sandbox):
    client = PSPHttpClient(api_base=sandbox, timeout=5)
    stripe_client = stripe.StripeClient("sk_test_sandbox", base_addresses={"api": sandbox},
                                        max_network_retries=0, http_client=client)
    params = {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True,
              "allowed_payment_method_types": ["card"], "metadata": {"note": "café ☕ «ünïcode»"}}
    first = stripe_client.raw_request("post", "/v1/payment_intents", **params, idempotency_key="k-http-headers")
    replay = stripe_client.raw_request("post", "/v1/payment_intents", **params, idempotency_key="k-http-headers")
    assert first.data["metadata"]["note"] == "café ☕ «ünïcode»" and replay.data["id"] == first.data["id"]
    assert first.request_id.startswith("req_") and replay.request_id != first.request_id
    assert "Idempotent-Replayed" not in first.headers and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["idempotent-replayed"] == "true" and replay.idempotency_key == "k-http-headers"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.raw_request("get", "/v1/payment_intents/pi_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert missing.value.request_id.startswith("req_")


def test_a_rate_limit_is_the_retryable_path_and_charges_nothing(sandbox):
    configure(sandbox, rate_limit_rate=1.0)
    psp, _ = adapter(sandbox)
    with pytest.raises(PSPRetryableError, match="RateLimitError"):
        psp.create_payment(payment("ord_http_429"))
    assert sandbox_money(sandbox)["faults"].get("rate_limit") == 1 and sandbox_money(sandbox)["charges"] == []
    configure(sandbox, rate_limit_rate=0.0)
    assert psp.create_payment(payment("ord_http_429")).status is PaymentStatus.SUCCEEDED  # the same key


def test_each_thread_keeps_its_own_connection(sandbox):
    psp, client = adapter(sandbox)
    seen: dict[int, set] = {}
    errors = []

    def calls(n):
        try:
            for i in range(10):
                psp.create_payment(payment(f"ord_http_thread_{n}_{i}", amount=100 + n))
                seen.setdefault(n, set()).add(id(connection_of(client, sandbox).sock))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=calls, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(len(socks) == 1 for socks in seen.values())  # 10 calls, one kept-alive connection
    assert len(set().union(*seen.values())) == 12  # none shared between threads
    assert len(sandbox_money(sandbox)["charges"]) == 120


def test_https_is_verified_and_proxies_are_read_from_the_environment(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = PSPHttpClient(api_base="https://api.stripe.com", timeout=5)
    direct = client._new_connection(client._route("https://api.stripe.com/v1/x"))
    assert isinstance(direct, http.client.HTTPSConnection) and (direct.host, direct.port) == ("api.stripe.com", 443)
    assert direct._context.verify_mode is ssl.CERT_REQUIRED and direct._context.check_hostname

    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.internal:3128")
    client = PSPHttpClient(api_base="https://api.stripe.com", timeout=5)
    tunnelled = client._new_connection(client._route("https://api.stripe.com/v1/x"))
    assert (tunnelled.host, tunnelled.port) == ("proxy.internal", 3128)
    assert (tunnelled._tunnel_host, tunnelled._tunnel_port) == ("api.stripe.com", 443)
    assert tunnelled._tunnel_headers["Proxy-Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss

    monkeypatch.setenv("NO_PROXY", "api.stripe.com")
    client = PSPHttpClient(api_base="https://api.stripe.com", timeout=5)
    assert client._new_connection(client._route("https://api.stripe.com/v1/x")).host == "api.stripe.com"

    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.internal:1080")
    with pytest.raises(ValueError, match="not supported"):
        PSPHttpClient(api_base="https://api.stripe.com", timeout=5)


class _ForwardingProxy(BaseHTTPRequestHandler):
    """An HTTP proxy: the absolute URL of each request is forwarded, and recorded."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str]] = []

    def _forward(self):
        self.seen.append((self.path, self.headers.get("Proxy-Authorization", "")))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with loopback.Client(timeout=5, trust_env=False) as upstream:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("proxy-authorization", "host", "content-length")}
            answer = upstream.request(self.command, self.path, content=body, headers=headers)
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


def test_plain_http_goes_through_the_environments_proxy(sandbox, monkeypatch):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    _ForwardingProxy.seen = []
    try:
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://shop:secret@127.0.0.1:{proxy.server_address[1]}")
        psp, _ = adapter(sandbox)
        assert psp.create_payment(payment("ord_http_proxy")).status is PaymentStatus.SUCCEEDED
        assert _ForwardingProxy.seen == [(f"{sandbox}/v1/payment_intents", "Basic c2hvcDpzZWNyZXQ=")]
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.parametrize("head", [
    b"Content-Type: application/json\r\nContent-Length: 2\r\nRequest-Id: req_1\r\nIdempotent-Replayed: true\r\n\r\n",
    b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-Folded: one\r\n  two\r\n\tthree\r\nX-Empty:\r\nX-Colons: a: b :c\r\n\r\n",
    b"Server:  padded value  \r\nX-Latin: caf\xe9\r\n\n",
    b"X-Only: the connection closed before the empty line\r\n",
    b" leading continuation\r\nX-A: 1\r\n\r\n",
    b"From someone\r\nX-A: 1\r\n\r\n",
    b"no colon here\r\nX-A: 1\r\n\r\n",
    b": no name\r\nX-A: 1\r\n\r\n",
    b"X-A: 1\r\nBad Name: 2\r\nX-B: 3\r\n\r\n",
    b"\r\n",
])
def test_response_headers_are_read_as_http_client_reads_them(head):
    """The client's header parser (without the email package's feed parser) gives ``http.client``'s own message:
    the same headers, in order, with the same values, and what follows left unread."""
    import io

    ours_fp, theirs_fp = io.BytesIO(head + b"BODY"), io.BytesIO(head + b"BODY")
    ours = http_client_module._parse_headers(ours_fp)
    theirs = http.client.parse_headers(theirs_fp)
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items()
    assert ours.get_all("set-cookie") == theirs.get_all("set-cookie")
    assert ours_fp.read() == theirs_fp.read()


def _code_globals(namespace: dict) -> dict:
    """A module's names less ``parse_headers`` and ``__warningregistry__``: the warnings module adds the
    latter to whichever module a warning is charged to, and a socket's ``ResourceWarning`` is charged to the
    frame running when the collector finds it, so it may land in ``http.client`` during any test."""
    return {k: v for k, v in namespace.items() if k not in ("parse_headers", "__warningregistry__")}


def test_the_response_class_is_http_clients_begin_with_only_its_header_parser_swapped():
    response = http_client_module._Response
    assert response.begin.__code__ is http.client.HTTPResponse.begin.__code__
    assert response.begin.__globals__["parse_headers"] is http_client_module._parse_headers
    assert _code_globals(response.begin.__globals__) == _code_globals(vars(http.client))
    assert http_client_module._HTTPConnection.response_class is response
    assert http_client_module._HTTPSConnection.response_class is response
