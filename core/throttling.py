"""Rate limits kept in Redis: per API key for authenticated API requests, per client IP for everything
unauthenticated (no key, a bad key, the schema views) and for the PSP's webhook endpoint.

Each limit is a fixed window counted atomically in one Redis script (``SET key 0 EX window NX``,
``INCR key``, ``TTL key``, run by ``EVALSHA``: one command, where a MULTI/EXEC transaction cost five): no
read-modify-write, and the counter always carries its expiry. Over the limit,
the request is answered 429 ``rate_limited`` in the error shape with ``Retry-After`` (the window's TTL).
The counters live in the ``ratelimit`` cache (Django's ``RedisCache``, ``CACHES["ratelimit"]``: its own Redis
database and key prefix), whose connection pool we borrow for the script.

A Redis that does not answer never takes the API down: the request is let through (fail open), a warning
is logged (at most one per ``RATE_LIMIT_REDIS_RETRY_SECONDS``), and Redis is not asked again for that long.

Wiring (config/settings/base.py): ``RateLimitedApiKeyAuthentication`` is the API's authentication class
(DRF checks permissions, hence refuses anonymous requests with a 401, before it runs throttles, so the
per-IP limit of unauthenticated requests is applied where authentication fails); ``ApiRateThrottle`` is the
default throttle (per key, or per IP where no authentication ran); ``api_exception_handler`` adds
``Retry-After`` to the error shape; ``core.middleware.RateLimitMiddleware`` limits ``/webhooks/`` per IP.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions, throttling

from core import errors
from core.authentication import ApiKeyAuthentication

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)  # read on every request, from a handful of settings
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"100/s"``, ``"60/m"``, ``"1000/h"``, ``"20/10s"`` -> (requests, window seconds); empty or ``"off"``:
    no limit."""
    if rate is None or str(rate).strip().lower() in ("", "off", "none", "0"):
        return None
    match = _RATE.match(str(rate))
    if not match:
        raise ValueError(f"rate {rate!r} is not 'N/s', 'N/m', 'N/h', 'N/d' or 'N/<k>s'")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _UNIT_SECONDS[unit]


def client_address(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or, behind ``RATE_LIMIT_TRUSTED_PROXIES`` proxies of our own,
    the ``X-Forwarded-For`` entry the outermost of them appended (the ones left of it are the client's to
    write). Also django-axes' (``AXES_CLIENT_IP_CALLABLE``)."""
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "")
    address = remote
    proxies = settings.RATE_LIMIT_TRUSTED_PROXIES
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            address = forwarded[-min(proxies, len(forwarded))]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return remote
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def client_ip(request) -> str:
    """What a per-IP limit counts: the client's address, IPv6 ones by their /64 (which one client usually
    holds whole)."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int = 0
    limit: int = 0
    retry_after: int = 0


_ALLOWED = Decision(allowed=True)
_outage = threading.Lock()
_redis_down_until = 0.0


def _redis_failed(exc: Exception) -> None:
    global _redis_down_until
    with _outage:
        now = time.monotonic()
        if now < _redis_down_until:
            return
        _redis_down_until = now + settings.RATE_LIMIT_REDIS_RETRY_SECONDS
    logger.warning("event=rate_limit_unavailable action=fail_open retry_in_s=%s error=%s",
                   settings.RATE_LIMIT_REDIS_RETRY_SECONDS, type(exc).__name__)


_COUNT = """redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local count = redis.call('INCR', KEYS[1])
return {count, redis.call('TTL', KEYS[1])}"""
_count_scripts: list = []


def _count_script(client):
    """The counting script, registered once (redis-py loads it again by itself after a Redis restart)."""
    if not _count_scripts:
        _count_scripts.append(client.register_script(_COUNT))
    return _count_scripts[0]


def hit(scope: str, ident: str, rate: str | None) -> Decision:
    """Count one request of ``ident`` against ``rate`` in ``scope``; atomic, and open when Redis is not."""
    parsed = parse_rate(rate)
    if parsed is None or not settings.RATE_LIMIT_ENABLED:
        return _ALLOWED
    if time.monotonic() < _redis_down_until:
        return _ALLOWED
    limit, window = parsed
    try:
        cache = caches[settings.RATE_LIMIT_CACHE]
        # make_key, not make_and_validate_key: memcached's key checks (a loop over every character) mean
        # nothing to Redis, and the scope and ident are ours (an id, an address).
        key = cache.make_key(f"{scope}:{window}:{ident}")
        # Django's RedisCache.incr() is EXISTS then INCR (a counter expiring in between would come back
        # without a TTL): one script on the cache's own connection pool instead.
        client = cache._cache.get_client(key, write=True)
        count, ttl = _count_script(client)(keys=[key], args=[window], client=client)
    except Exception as exc:  # noqa: BLE001  (any failure of the limiter lets the request through)
        _redis_failed(exc)
        return _ALLOWED
    if count <= limit:
        return Decision(allowed=True, count=count, limit=limit)
    retry_after = ttl if ttl and ttl > 0 else window
    if count == limit + 1:  # once per window and client, not once per refused request
        logger.warning("event=rate_limited scope=%s ident=%s limit=%s window_s=%s", scope, ident, limit, window)
    return Decision(allowed=False, count=count, limit=limit, retry_after=retry_after)


class RateLimited(exceptions.Throttled):
    """429 ``rate_limited`` (the error shape's code for 429), with ``Retry-After``."""

    def __init__(self, wait: int, what: str):
        super().__init__(wait=wait)
        # DRF's own detail appends "Expected available in N seconds." to any message: ours says it once.
        self.detail = exceptions.ErrorDetail(f"Too many requests {what}; retry after {wait} seconds.",
                                             code="throttled")


def check_anonymous(request) -> None:
    """The per-IP limit of unauthenticated API requests; raises ``RateLimited`` over it. Counted once per
    request."""
    if getattr(request, "_rate_limit_anonymous_counted", False):
        return
    request._rate_limit_anonymous_counted = True
    decision = hit("anon", client_ip(request), settings.RATE_LIMIT_ANONYMOUS)
    if not decision.allowed:
        raise RateLimited(decision.retry_after, "from this address without a valid API key")


class RateLimitedApiKeyAuthentication(ApiKeyAuthentication):
    """The API-key authentication, with the per-IP limit applied to every request it does not authenticate:
    a bad key (before its 401) and a missing one. A valid key is never refused for its address's failures
    (keys are 256 random bits: a 429 rather than a 401 tells a guesser nothing)."""

    def authenticate(self, request):
        try:
            result = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            check_anonymous(request)
            raise
        if result is None:
            check_anonymous(request)
        return result


class ApiRateThrottle(throttling.BaseThrottle):
    """DRF throttle: ``RATE_LIMIT_API_KEY`` per API client; a request without one is held to
    ``RATE_LIMIT_ANONYMOUS`` per IP (views with no authentication class, such as the schema)."""

    def allow_request(self, request, view) -> bool:
        client = request.user
        if client is None or not getattr(client, "pk", None):
            check_anonymous(request)
            return True
        decision = hit("key", str(client.pk), settings.RATE_LIMIT_API_KEY)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "for this API key")
        return True


def api_exception_handler(exc, context):
    """``core.errors.api_exception_handler``, plus ``Retry-After`` on a 429 (what DRF's own handler adds)."""
    response = errors.api_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    return response


def webhook_refusal(request):
    """The per-IP limit of the webhook endpoint: a 429 response in the error shape, or None."""
    decision = hit("webhook", client_ip(request), settings.RATE_LIMIT_WEBHOOK)
    if decision.allowed:
        return None
    response = errors.json_error_response(
        429, error_type="rate_limit_error", code="rate_limited",
        message=f"Too many webhook deliveries from this address; retry after {decision.retry_after} seconds.")
    response["Retry-After"] = str(decision.retry_after)
    return response
