"""A load client light enough not to be the thing measured: one request per connection over the standard
library's ``http.client`` (gunicorn's sync workers close each connection anyway).

Measured against httpx on the same stack (paced pings at 146/s, 16 threads, quiet machine): httpx's client
p99 157-270 ms while gunicorn's own request time (``%(D)s``) stayed at p99 2.6 ms; this client p99 2.8 ms.
httpx's per-request CPU in the bench's own process, under the GIL with 15 other threads, delayed the threads'
wake-ups (p99 14 ms, max 93 ms) and the requests themselves, so the tail it reported was its own.
"""
from __future__ import annotations

import http.client
import json as jsonlib
from urllib.parse import urlsplit

ERRORS = (OSError, http.client.HTTPException)


class LeanResponse:
    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code, self.content = status_code, content

    def json(self):
        return jsonlib.loads(self.content)


class LeanClient:
    """``get``/``post`` as httpx's ``Client`` spells them (the subset the benches use)."""

    def __init__(self, timeout: float = 60) -> None:
        self.timeout = timeout

    def request(self, method: str, url: str, *, json=None, headers: dict | None = None) -> LeanResponse:
        parts = urlsplit(url)
        body = None if json is None else jsonlib.dumps(json).encode()
        sent = {"Connection": "close", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        try:
            connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                               headers=sent)
            response = connection.getresponse()
            return LeanResponse(response.status, response.read())
        finally:
            connection.close()

    def get(self, url: str, *, headers: dict | None = None) -> LeanResponse:
        return self.request("GET", url, headers=headers)

    def post(self, url: str, *, json=None, headers: dict | None = None) -> LeanResponse:
        return self.request("POST", url, json=json, headers=headers)
