"""The layers of a checkout and a ping that ``bench/checkout_cpu.py --callgrind --layers`` measures (instructions
per request, inclusive: a layer holds the layers it calls; ``bench/_layers.py`` for how)."""
from __future__ import annotations

import re
import subprocess


def specs() -> list[tuple[str, object, str]]:
    return [*_request(), *_checkout(), *_finer()]


def _request() -> list[tuple[str, object, str]]:
    """What a ping and a checkout share: Django's handler, DRF's dispatch, the connection's handling."""
    from django.core.handlers.base import BaseHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper
    from django.http.response import HttpResponseBase
    from rest_framework.renderers import JSONRenderer
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from core.throttling import ApiRateThrottle, RateLimitedApiKeyAuthentication

    return [
        ("wsgi", WSGIHandler, "__call__"),
        ("get_response", BaseHandler, "get_response"),
        ("response_close", HttpResponseBase, "close"),
        ("dispatch", APIView, "dispatch"),
        ("initialize_request", APIView, "initialize_request"),
        ("initial", APIView, "initial"),
        ("authenticate", RateLimitedApiKeyAuthentication, "authenticate"),
        ("throttle", ApiRateThrottle, "allow_request"),
        ("finalize_response", APIView, "finalize_response"),
        ("render", Response, "rendered_content"),
        ("json_render", JSONRenderer, "render"),
        ("cursor_execute", CursorWrapper, "execute"),
        ("ensure_connection", BaseDatabaseWrapper, "ensure_connection"),
        ("close_if_unusable", BaseDatabaseWrapper, "close_if_unusable_or_obsolete"),
        ("db_close", BaseDatabaseWrapper, "close"),
    ]


def _checkout() -> list[tuple[str, object, str]]:
    """The checkout's own: its view, validation, the idempotency wrapper, the service, the publish, rendering."""
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.transaction import Atomic
    from rest_framework.request import Request

    import core.broker
    import core.db
    import core.services
    import core.views
    import payments.services
    import payments.services.checkout
    import payments.services.checkout_write
    import payments.services.enqueue
    from payments.apis import CheckoutListCreateApi
    from payments.models import PaymentEvent, PaymentOrder, PaymentOrderTransition
    from payments.serializers import CheckoutInput, PaymentEventOutput

    return [
        ("post", CheckoutListCreateApi, "post"),
        ("validated", core.views, "validated"),
        ("parse", Request, "_load_data_and_files"),
        ("is_valid", CheckoutInput, "is_valid"),
        ("idempotent_response", core.views, "idempotent_response"),
        ("idempotent_call", core.services, "idempotent_call"),
        ("fingerprint", core.services, "request_fingerprint"),
        ("claim", core.services, "_claim"),
        ("claim_with_rows", core.services, "_claimed_with_rows"),
        ("rows_params", payments.services.checkout_write, "_parameters"),
        ("rows_done", payments.services.checkout_write.CheckoutRows, "done"),
        ("atomic_enter", Atomic, "__enter__"),
        ("atomic_exit", Atomic, "__exit__"),
        ("commit_hooks", BaseDatabaseWrapper, "run_and_clear_commit_hooks"),
        ("task_push", core.broker, "task_push"),
        ("event_create", payments.services, "payment_event_create"),
        ("orders_validate", payments.services.checkout, "checkout_amounts_validate"),
        ("insert", core.db, "objects_insert"),
        ("event_write", payments.services, "payment_event_write"),
        ("rows_write", payments.services.checkout, "checkout_rows_insert"),
        ("checkout_output", payments.serializers, "checkout_output"),
        ("enqueue", payments.services.enqueue, "enqueue_payment_event"),
        ("event_init", PaymentEvent, "__init__"),
        ("order_init", PaymentOrder, "__init__"),
        ("transition_init", PaymentOrderTransition, "__init__"),
        ("output", PaymentEventOutput, "data"),
    ]


def _finer() -> list[tuple[str, object, str]]:
    import os

    if not os.environ.get("LAYERS_FINER"):
        return []
    import sys

    import kombu.utils.json
    from axes.middleware import AxesMiddleware
    from django.http.request import HttpRequest
    from django.middleware.clickjacking import XFrameOptionsMiddleware
    from django.middleware.common import CommonMiddleware
    from django.middleware.csrf import CsrfViewMiddleware
    from django.middleware.security import SecurityMiddleware
    from redis.client import Redis
    from whitenoise.middleware import WhiteNoiseMiddleware

    import core.broker
    import core.db
    import core.ids
    import core.middleware

    return [
        ("abs_uri", HttpRequest, "build_absolute_uri"),
        ("sec_req", SecurityMiddleware, "process_request"),
        ("sec_resp", SecurityMiddleware, "process_response"),
        ("whitenoise", WhiteNoiseMiddleware, "__call__"),
        ("common_req", CommonMiddleware, "process_request"),
        ("common_resp", CommonMiddleware, "process_response"),
        ("csrf_req", CsrfViewMiddleware, "process_request"),
        ("csrf_view", CsrfViewMiddleware, "process_view"),
        ("csrf_resp", CsrfViewMiddleware, "process_response"),
        ("xframe_resp", XFrameOptionsMiddleware, "process_response"),
        ("axes", AxesMiddleware, "__call__"),
        ("bodylimit", core.middleware.ApiBodySizeLimitMiddleware, "__call__"),
        ("ratelimit_mw", core.middleware.RateLimitMiddleware, "__call__"),
        ("kombu_dumps", kombu.utils.json, "dumps"),
        ("kombu_uuid", sys.modules["kombu.utils.uuid"], "uuid"),
        ("redis_execute", Redis, "execute_command"),
        ("prepared", core.db, "_prepared"),
        ("new_id", core.ids, "new_id"),
    ]


def install() -> list[str]:
    from bench._layers import layers_install

    return layers_install(specs())


def _layers(dump: str) -> dict[str, int]:
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump], check=True,
                         capture_output=True, text=True).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        match = re.match(r"\s*([\d,]+) .*layer_(\w+?)(?:'\d+)?(?: \[|$)", line)
        if match and "'" not in line.split("layer_", 1)[1].split(" ")[0]:
            label, value = match.group(2), int(match.group(1).replace(",", ""))
            found[label] = max(found.get(label, 0), value)
    return found


def report(dumps: dict[str, str], labels: list[str], n: int) -> None:
    """Per layer, instructions per request in the checkout and in the ping (thousands)."""
    measured = {name: _layers(path) for name, path in dumps.items()}
    print("layers (k instructions per request, inclusive; each holds ~10-20 k of the marker's own cost):")
    for label in labels:
        cells = [f"{measured[name].get(label, 0) / n / 1e3:9.0f}" for name in ("checkout", "ping")]
        print(f"  {label:<22} checkout {cells[0]}   ping {cells[1]}")
