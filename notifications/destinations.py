"""Where a merchant's webhook may be sent: not into our own network (server-side request forgery).

A URL whose host is, or resolves to, a loopback, private, link-local, multicast or reserved address
is refused when an endpoint is registered (for an IP written in the URL, or ``localhost``) and again
before each delivery (for every address the host resolves to then: DNS can change after
registration). ``NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS`` lifts it for development and the tests,
whose listeners are on 127.0.0.1.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

_LOCAL_NAMES = {"localhost", "localhost.localdomain"}


def _address_refusal(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return None if ip.is_global else f"{address} is not a public address"


def destination_refusal_at_registration(url: str) -> str | None:
    """Why ``url`` may not be registered, without resolving names (``None``: it may)."""
    if settings.NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS:
        return None
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"{host} is this machine"
    try:
        return _address_refusal(host)
    except ValueError:
        return None  # a name: checked against what it resolves to at each delivery


def destination_refusal_at_delivery(url: str) -> str | None:
    """Why nothing may be sent to ``url`` now: a refused host, or one resolving to a refused address."""
    refusal = destination_refusal_at_registration(url)
    if refusal or settings.NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS:
        return refusal
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"{parts.hostname} does not resolve ({exc})"
    for *_, sockaddr in infos:
        refusal = _address_refusal(sockaddr[0])
        if refusal:
            return f"{parts.hostname} resolves to {refusal}"
    return None
