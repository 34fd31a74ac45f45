"""The layers of an executed payment event that ``bench/executor_cpu.py --callgrind --layers`` measures
(instructions per settled order, inclusive: a layer holds the layers it calls; ``bench/_layers.py`` for how)."""
from __future__ import annotations


def specs() -> list[tuple[str, object, str]]:
    import http.client

    import psycopg
    import stripe
    from celery.app import trace
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper
    from django.db.models import Model

    from core import db, transitions
    from payments import tasks
    from payments.psp import http_client
    from payments.psp.stripe_adapter import StripeAdapter
    from payments.services import checkout_outcome, customers, execution, order_rows, postings

    return [
        ("orders_execute", tasks, "payment_event_orders_execute"),
        ("event_prepare", customers, "payment_event_prepare"),
        ("event_read", order_rows, "event_with_orders"),
        ("order_execute", execution, "payment_order_execute"),
        ("claim", order_rows, "order_claim"),
        ("release", execution, "db_connection_release"),
        ("psp_customer", StripeAdapter, "create_customer"),
        ("psp_payment", StripeAdapter, "create_payment"),
        ("sdk_raw_request", stripe.StripeClient, "raw_request"),
        ("http_request", http_client.PSPHttpClient, "request"),
        ("http_send", http.client.HTTPConnection, "request"),
        ("http_response", http.client.HTTPConnection, "getresponse"),
        ("apply_result", execution, "payment_order_apply_result_or_dead_letter"),
        ("transition_prepare", transitions, "transition_prepare"),
        ("decided", checkout_outcome, "payment_event_order_decided"),
        ("capture_post", postings, "capture_post"),
        ("parts_run", db, "statement_parts_run"),
        ("cursor", BaseDatabaseWrapper, "cursor"),
        ("cursor_execute", CursorWrapper, "execute"),
        ("psycopg_execute", psycopg.Cursor, "execute"),
        ("commit", BaseDatabaseWrapper, "commit"),
        ("set_autocommit", BaseDatabaseWrapper, "set_autocommit"),
        ("db_connect", BaseDatabaseWrapper, "connect"),
        ("db_close", BaseDatabaseWrapper, "close"),
        ("model_init", Model, "__init__"),
        *_finer(),
        ("trace_signals", trace, "send_prerun"),
    ]


def _finer() -> list[tuple[str, object, str]]:
    """Inside the SDK's request and psycopg's execute."""
    import psycopg
    from psycopg import _queries
    from stripe import _api_requestor, _http_client

    requestor = _api_requestor._APIRequestor
    return [
        ("sdk_args", requestor, "_args_for_request_with_retries"),
        ("sdk_interpret", requestor, "_interpret_response"),
        ("sdk_with_retries", _http_client.HTTPClient, "request_with_retries"),
        ("pg_convert", _queries.PostgresQuery, "convert"),
        ("pg_wait", psycopg.Connection, "wait"),
        ("pg_fetchone", psycopg.Cursor, "fetchone"),
        ("pg_cursor_new", psycopg.Connection, "cursor"),
        *_pool(),
    ]


def _pool() -> list[tuple[str, object, str]]:
    """A connection taken from the pool and handed back (around each PSP call)."""
    from django.db.backends.postgresql.base import DatabaseWrapper
    from psycopg_pool import ConnectionPool

    return [
        ("pool_getconn", ConnectionPool, "getconn"),
        ("pool_putconn", ConnectionPool, "putconn"),
        ("pool_check", ConnectionPool, "_check_connection"),
        ("db_init_state", DatabaseWrapper, "init_connection_state"),
        ("db_conn_params", DatabaseWrapper, "get_connection_params"),
    ]


def install() -> list[str]:
    from bench._layers import layers_install

    return layers_install(specs())


def report(dump: str, labels: list[str], orders: int) -> None:
    """Per layer, thousands of instructions per settled order."""
    from bench._checkout_layers import _layers

    measured = _layers(dump)
    print("layers (k instructions per settled order, inclusive; each holds ~10-20 k of the marker's own cost per "
          "call):")
    for label in labels:
        print(f"  {label:<20} {measured.get(label, 0) / orders / 1e3:9.0f}")
