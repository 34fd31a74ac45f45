"""``httpx``'s ``get``, ``post`` and ``Client`` for the tests' calls to 127.0.0.1, on one shared SSL context.

httpx gives every ``Client`` (and every ``httpx.get`` or ``httpx.post``, which make one) a new SSL context, even
for a plain ``http://`` URL: OpenSSL 3's ``SSL_CTX_new`` and the CA bundle cost ~55 ms of CPU each on a slow
machine, a fifth of the suite process's CPU (py-spy, fifteenth session). These pass one context made once, so the
calls are httpx's own in everything else.
"""
from __future__ import annotations

import httpx

TLS = httpx.create_ssl_context()  # what httpx makes for each client with verify=True


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, verify=TLS, **kwargs)


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, verify=TLS, **kwargs)


def Client(**kwargs) -> httpx.Client:  # noqa: N802 - httpx's name, so a call site reads as it did
    return httpx.Client(verify=TLS, **kwargs)
