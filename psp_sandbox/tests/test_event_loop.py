"""The event loop (``psp_sandbox.loop``, the default server): waits overlap on timers, requests arrive in
pieces or pipelined, and connections it does not serve itself go to the threaded path with their bytes."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import stripe

from psp_sandbox.loop import plain_request
from psp_sandbox.tests.test_sandbox import charges_for, create, make_client, sb_call

HEADERS = "Authorization: Bearer sk_test_sandbox\r\nContent-Type: application/x-www-form-urlencoded\r\n"


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _post(path: str, body: str, key: str | None = None, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{HEADERS}Content-Length: {len(body.encode())}\r\n"
    return (head + (f"Idempotency-Key: {key}\r\n" if key else "") + extra + "\r\n" + body).encode()


def _answers(sock: socket.socket, n: int) -> list[tuple[int, dict]]:
    """``n`` answers read off the socket in order: (status, JSON body)."""
    reader = sock.makefile("rb")
    out = []
    for _ in range(n):
        status = int(reader.readline().split()[1])
        headers = http.client.parse_headers(reader)
        out.append((status, json.loads(reader.read(int(headers["Content-Length"])))))
    return out


def test_a_plain_head_is_the_loops_and_any_other_is_not() -> None:
    assert plain_request(b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: 12") == 12
    assert plain_request(b"GET /v1/customers/cus_1 HTTP/1.1\r\nHost: x") == 0
    assert plain_request(b"POST /v1/x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 9") == 3  # the first
    for head in (
        b"GET /_sandbox/health HTTP/1.1\r\nHost: x",  # not /v1/
        b"GET /v1/x HTTP/1.0\r\nHost: x",
        b"GET /v1/x HTTP/1.1\r\nHost: x\r\n folded",
        b"GET /v1/x HTTP/1.1\r\nNo colon here",
        b"GET /v1/x HTTP/1.1\r\nA: b\rc",
        b"GET /v1/x HTTP/1.1\r\nA: b\nC: d",
        b"POST /v1/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3",
        b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"POST /v1/x HTTP/1.1\r\nContent-Length: -1",
        b"POST /v1/x HTTP/1.1\r\nContent-Length: 99999999",
        b"GET /v1/x HTTP/1.1\r\n" + b"A: b\r\n" * 100 + b"C: d",
    ):
        assert plain_request(head) is None, head


def test_latency_waits_overlap(url: str) -> None:
    sb_call(url, "/_sandbox/config", {"latency_ms": [400, 400]})
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            create(make_client(url), key=f"overlap-{i}-{uuid.uuid4().hex[:6]}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert not errors
    assert 0.4 <= elapsed < 3.0  # twenty calls of 0.4 s each, waiting at once (8 s one after the other)


def test_a_timeout_fault_holds_only_its_own_connection(url: str) -> None:
    sb_call(url, "/_sandbox/config", {"timeout_delay_s": 2})
    slow: list[BaseException] = []
    thread = threading.Thread(target=lambda: _expect_timeout(url, slow))
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert create(make_client(url)).status == "succeeded"
    assert time.monotonic() - started < 1.5
    thread.join()
    assert len(slow) == 1 and isinstance(slow[0], stripe.APIConnectionError)
    assert len(charges_for(url, "k-loop-timeout")) == 1  # charged, answered late


def _expect_timeout(url: str, out: list[BaseException]) -> None:
    try:
        create(make_client(url, timeout=1), pm="pm_sandbox_timeout", key="k-loop-timeout")
    except stripe.StripeError as exc:
        out.append(exc)


def test_pipelined_requests_are_answered_in_order(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(b"".join(_post("/v1/customers", f"email=p{i}%40example.com", key=f"pipe-{i}") for i in range(3))
                     + f"GET /v1/customers/cus_missing HTTP/1.1\r\nHost: x\r\n{HEADERS}\r\n".encode())
        answers = _answers(sock, 4)
    assert [status for status, _ in answers] == [200, 200, 200, 404]
    assert [body["email"] for _, body in answers[:3]] == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert answers[3][1]["error"]["code"] == "resource_missing"


def test_a_request_in_pieces(url: str) -> None:
    raw = _post("/v1/customers", "email=pieces%40example.com", key="pieces")
    with _connect(url) as sock:
        for start in range(0, len(raw), 17):
            sock.sendall(raw[start:start + 17])
            time.sleep(0.01)
        [(status, body)] = _answers(sock, 1)
    assert status == 200 and body["email"] == "pieces@example.com"


def test_a_connection_handed_over_keeps_its_bytes(url: str) -> None:
    """A control request first: the connection goes to the threaded path with the /v1/ request behind it."""
    with _connect(url) as sock:
        sock.sendall(b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n"
                     + _post("/v1/customers", "email=after%40example.com", key="after"))
        (health, _), (status, body) = _answers(sock, 2)
    assert health == 200 and status == 200 and body["email"] == "after@example.com"


def test_an_unusual_head_gets_the_standard_answers(url: str) -> None:
    with _connect(url) as sock:  # Expect: 100-continue, as BaseHTTPRequestHandler answers it
        body = b"email=expect%40example.com"
        sock.sendall(f"POST /v1/customers HTTP/1.1\r\nHost: x\r\n{HEADERS}Content-Length: {len(body)}\r\n"
                     "Expect: 100-continue\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        [(status, answer)] = _answers(sock, 1)
    assert status == 200 and answer["email"] == "expect@example.com"
    with _connect(url) as sock:  # a header line over http.client's limit
        sock.sendall(b"GET /v1/customers HTTP/1.1\r\nA: " + b"x" * 70000 + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 431 ")


def test_a_head_the_loop_checked_is_split_into_the_headers_read_head_reads():
    import io
    import random

    from psp_sandbox.http_io import MAX_HEADERS, checked_head, read_head
    from psp_sandbox.loop import plain_request

    rng = random.Random(8)
    names = ["Host", "X-A", "Stripe-Version", "a!#$%&'*+-.^_`|~9", "X-Dup", "x-dup"]
    values = ["", " ", "\t v", "a: b:c", "  x  ", "é", "v\t", "1"]
    for count in [0, 1, 2, MAX_HEADERS - 2, MAX_HEADERS - 1, MAX_HEADERS] + [rng.randrange(12) for _ in range(400)]:
        lines = [f"{rng.choice(names)}:{rng.choice(values)}" for _ in range(count)]
        head = "\r\n".join(["POST /v1/customers HTTP/1.1", *lines]).encode("iso-8859-1")
        assert plain_request(head) is not None
        request = head + b"\r\n\r\nbody"
        lean, plain = io.BytesIO(request), io.BytesIO(request)
        lean.readline(), plain.readline()
        fast = checked_head(lean)
        if count + 1 > MAX_HEADERS:
            assert fast is None and lean.tell() == plain.tell()
            continue
        slow = read_head(plain, object)
        assert fast.items() == slow.items() and lean.read() == plain.read() == b"body"
