"""Rate limits in the real Redis (core/throttling.py) and the admin's login lock-out (django-axes).

Each test counts under a key prefix of its own (``CACHES["ratelimit"]["KEY_PREFIX"]``), deleted afterwards,
and sets the limits it tests through settings."""
from __future__ import annotations

import copy
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from django.test import Client, RequestFactory

from core import throttling
from core.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    """A key prefix of this test's own in the rate-limit Redis; its keys are removed at the end."""
    prefix = f"test-rl-{uuid.uuid4().hex[:12]}"
    caches = copy.deepcopy(settings.CACHES)
    caches[settings.RATE_LIMIT_CACHE]["KEY_PREFIX"] = prefix
    settings.CACHES = caches  # Django drops its cache connections on this change
    settings.RATE_LIMIT_ENABLED = True
    throttling._redis_down_until = 0.0
    store = redis.Redis.from_url(caches[settings.RATE_LIMIT_CACHE]["LOCATION"])
    yield store, prefix
    keys = list(store.scan_iter(match=f"{prefix}:*"))
    if keys:
        store.delete(*keys)
    store.close()
    throttling._redis_down_until = 0.0


def _ping(client: Client, key: str | None, ip: str = "203.0.113.7"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get("/api/v1/ping", REMOTE_ADDR=ip, **headers)


def _assert_rate_limited(response, window: int) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= window
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert (error["type"], error["code"], error["param"]) == ("rate_limit_error", "rate_limited", None)


def test_rates_are_read_from_settings():
    assert throttling.parse_rate("100/s") == (100, 1)
    assert throttling.parse_rate("60/m") == (60, 60)
    assert throttling.parse_rate("20/10s") == (20, 10)
    assert throttling.parse_rate("5/h") == (5, 3600)
    assert throttling.parse_rate("off") is None
    with pytest.raises(ValueError):
        throttling.parse_rate("lots")


def test_a_brute_force_of_bad_keys_is_refused_after_the_limit(settings, limits):
    store, prefix = limits
    settings.RATE_LIMIT_ANONYMOUS = "25/m"
    client = Client()
    statuses = [_ping(client, f"sk_live_guess_{n}").status_code for n in range(1000)]

    assert statuses[:25] == [401] * 25
    assert statuses[25:] == [429] * 975
    _assert_rate_limited(_ping(client, "sk_live_one_more"), window=60)
    _assert_rate_limited(_ping(client, None), window=60)  # no key at all: the same per-IP count
    # The counter is one Redis key with its expiry.
    (key,) = store.scan_iter(match=f"{prefix}:*anon*")
    assert 0 < store.ttl(key) <= 60
    # Another address is not affected, nor is a valid key from the same one.
    assert _ping(client, "sk_live_guess_x", ip="198.51.100.1").status_code == 401
    _, key = api_client_create(name="storefront")
    assert _ping(client, key).status_code == 200


def test_an_api_key_over_its_limit_is_refused_and_another_key_is_not(settings, limits):
    settings.RATE_LIMIT_API_KEY = "5/m"
    _, key_a = api_client_create(name="busy")
    _, key_b = api_client_create(name="quiet")
    client = Client()

    assert [_ping(client, key_a).status_code for _ in range(5)] == [200] * 5
    _assert_rate_limited(_ping(client, key_a), window=60)
    _assert_rate_limited(_ping(client, key_a, ip="198.51.100.9"), window=60)  # per key, not per address
    assert [_ping(client, key_b).status_code for _ in range(5)] == [200] * 5
    response = client.post("/api/v1/sellers", {"name": "x"}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key_a}", REMOTE_ADDR="203.0.113.7")
    _assert_rate_limited(response, window=60)  # every endpoint, writes included


def test_the_webhook_endpoint_is_limited_per_ip(settings, limits):
    settings.RATE_LIMIT_WEBHOOK = "3/m"
    client = Client()

    def deliver(ip: str):
        return client.post("/webhooks/psp", b"{}", content_type="application/json",
                           HTTP_STRIPE_SIGNATURE="t=1,v1=00", REMOTE_ADDR=ip)

    assert [deliver("192.0.2.10").status_code for _ in range(3)] == [400] * 3  # refused signatures, counted
    _assert_rate_limited(deliver("192.0.2.10"), window=60)
    assert deliver("192.0.2.11").status_code == 400


def test_the_counter_is_atomic_under_concurrency(settings, limits):
    settings.RATE_LIMIT_API_KEY = "40/m"
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: throttling.hit("key", "concurrent", settings.RATE_LIMIT_API_KEY),
                                  range(200)))
    assert sum(d.allowed for d in decisions) == 40
    assert sorted(d.count for d in decisions if d.allowed) == list(range(1, 41))


def test_a_redis_outage_fails_open_with_a_warning(settings, limits, caplog):
    settings.RATE_LIMIT_ANONYMOUS = "1/m"
    caches = copy.deepcopy(settings.CACHES)
    caches[settings.RATE_LIMIT_CACHE]["LOCATION"] = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CACHES = caches
    client = Client()
    with caplog.at_level(logging.WARNING, logger="core.throttling"):
        statuses = [_ping(client, "sk_live_bad").status_code for _ in range(5)]
    assert statuses == [401] * 5  # never 429, never 500
    warnings = [r.getMessage() for r in caplog.records if "rate_limit_unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "action=fail_open" in warnings[0]


def test_the_client_address_comes_from_x_forwarded_for_only_behind_trusted_proxies(settings, limits):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.50")
    settings.RATE_LIMIT_TRUSTED_PROXIES = 0
    assert throttling.client_ip(request) == "10.0.0.5"
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    assert throttling.client_ip(request) == "203.0.113.50"  # what our proxy saw, not what the client wrote
    settings.RATE_LIMIT_TRUSTED_PROXIES = 2
    assert throttling.client_ip(request) == "1.2.3.4"
    v6 = factory.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::1")
    assert throttling.client_ip(v6) == "2001:db8:1:2::/64"

    # A client spoofing X-Forwarded-For does not escape the per-IP limit when no proxy is trusted.
    settings.RATE_LIMIT_TRUSTED_PROXIES = 0
    settings.RATE_LIMIT_ANONYMOUS = "2/m"
    client = Client()
    statuses = [client.get("/api/v1/ping", REMOTE_ADDR="203.0.113.99", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").status_code
                for n in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_admin_login_locks_a_username_from_an_address_until_the_cool_off(settings, django_user_model):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    password = "correct horse battery staple"
    django_user_model.objects.create_superuser("operator", "op@example.com", password)
    client = Client()

    def login(pw: str, ip: str = "203.0.113.20"):
        client.logout()
        return client.post("/admin/login/", {"username": "operator", "password": pw, "next": "/admin/"},
                           REMOTE_ADDR=ip)

    assert [login("wrong").status_code for _ in range(3)] == [200, 200, 429]  # locked at the 3rd failure
    refused = login(password)
    assert refused.status_code == 429  # locked: the right password is refused
    assert "_auth_user_id" not in client.session
    assert login(password, ip="198.51.100.20").status_code == 302  # username + address, not username alone
    assert login(password).status_code == 429
    time.sleep(2.2)  # the cool-off, counted from the last attempt
    assert login(password).status_code == 302
    assert client.session["_auth_user_id"]


def test_the_admin_still_works_for_a_logged_in_operator(admin_client):
    assert admin_client.get("/admin/").status_code == 200
