"""The sandbox's cheaper paths give what the standard ones give: request heads (``http_io``), ids, events' text."""

from __future__ import annotations

import http.client
import io
import json
import random
import string

import pytest

from psp_sandbox import events, objects
from psp_sandbox.context import RequestContext
from psp_sandbox.http_io import HeadError, read_head
from psp_sandbox.store import new_id

HEADS = [
    b"Host: x\r\nContent-Length: 5\r\n\r\n",
    b"Host:x\r\nA:  b  \r\n\r\n",
    b"A: b\r\n c\r\n\r\n",  # a folded line
    b"A b\r\nC: d\r\n\r\n",  # no colon
    b"A: \x85\xe9\r\n\r\n",
    b"A: b\rC: d\r\n\r\n",  # a bare CR
    b"a: 1\r\nA: 2\r\n\r\n",
    b":x\r\nB: y\r\n\r\n",
    b"From me\r\nB: y\r\n\r\n",
    b"A: b\n\n",
    b"A: b\r\n",
    b"A: b",
    b"",
    b"A: b\r\r\n\r\n",
    b"A:\t b\t\r\n\r\n",
    b"A: b\x0bc\x0c\r\nD: \x1c\r\n\r\n",
]


def _random_heads(n: int) -> list[bytes]:
    rnd = random.Random(8)
    parts = [b"A", b"b", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x85", b"-", b"\x00", b"\x7f", b"From "]
    return [
        b"".join(rnd.choice(parts) for _ in range(rnd.randint(0, 20))) + rnd.choice([b"\r\n\r\n", b"\n\n", b""])
        for _ in range(n)
    ]


def test_heads_read_as_http_client_reads_them() -> None:
    for head in HEADS + _random_heads(3000):
        standard_file, lean_file = io.BytesIO(head), io.BytesIO(head)
        standard = http.client.parse_headers(standard_file)
        lean = read_head(lean_file, http.client.HTTPMessage)
        assert lean.items() == standard.items(), head
        for name in {k.lower() for k in standard.keys()} | {"host", "a", "b", "content-length", "missing"}:
            assert lean.get(name) == standard.get(name), (head, name)
            assert lean.get_all(name) == standard.get_all(name), (head, name)
        assert lean_file.tell() == standard_file.tell(), head


def test_a_head_over_http_clients_limits_is_refused_as_it_refuses_it() -> None:
    with pytest.raises(HeadError) as too_long:
        read_head(io.BytesIO(b"A: " + b"x" * 70000 + b"\r\n\r\n"), http.client.HTTPMessage)
    assert too_long.value.args[1:] == ("Line too long", "got more than 65536 bytes when reading header line")
    with pytest.raises(HeadError) as too_many:
        read_head(io.BytesIO(b"A: b\r\n" * 101 + b"\r\n"), http.client.HTTPMessage)
    assert too_many.value.args[1:] == ("Too many headers", "got more than 100 headers")


def test_ids_keep_their_alphabet_and_length() -> None:
    ids = [new_id("pi") for _ in range(5000)]
    alphabet = set(string.ascii_letters + string.digits)
    assert all(len(i) == 27 and i.startswith("pi_") and set(i[3:]) <= alphabet for i in ids)
    assert set("".join(i[3:] for i in ids)) == alphabet
    assert len(set(ids)) == len(ids)


def test_an_events_text_is_json_dumps_of_it() -> None:
    cfg = {"webhook_url": ""}
    ctx = RequestContext("req_1", "key \u0000 \"quoted\" é", "2026-10-28.endive", "http://x")
    obj = {"id": "cus_1", "object": "customer", "metadata": {"k": "v\u2028", "n": None}, "name": "N\u00e9"}
    event = events.new("customer.created", obj, cfg, ctx)
    text, obj_text = events.encode(event)
    assert text == json.dumps(event)
    assert obj_text == json.dumps(objects.complete(obj)) == json.dumps(event["data"]["object"])
