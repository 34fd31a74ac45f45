"""A Celery task published straight to its Redis list: the message Celery and kombu would write, one LPUSH.

``task.apply_async`` for a task of ids cost ~340 us of a web worker's CPU (1.3 M instructions, 15% of a
checkout), nearly all of it machinery our configuration does not use: the router, the producer pool and its
``ensure`` retry wrapper, kombu's virtual exchange, a result object nobody reads. The LPUSH itself is ~50 us.
``task_push`` writes the same message (Celery's protocol 2 in kombu's Redis envelope: the same keys in the
same order, only the ids differ; ``core/tests/test_broker.py`` compares them) and falls back to
``apply_async`` whenever that would do anything more: an eager app, a task sent from inside a task (its
parent and root ids), options (``countdown``, ``retries``), a task or a configuration with routes,
queues, priorities, expiry or time limits, another serializer, compression or transport, anybody listening to
the publish signals, and a process's first publish to a queue (Celery declares it).

A failed LPUSH raises ``redis.exceptions.RedisError`` (after 3 retries of a lost connection, as kombu's
``ensure`` retried under Celery's default policy); the caller publishes on commit with ``robust=True``
and the sweeper re-drives the work.
"""
from __future__ import annotations

import base64
import json
import operator
import os
import threading

import redis
from celery import Task, signals
from celery.utils.nodenames import anon_nodename
from kombu.utils.json import dumps
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

#: The body's third member, as Celery writes it for a task without callbacks, errbacks, chain or chord.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: Broker transport options that only the consumer reads.
_CONSUMER_ONLY_OPTIONS = {"visibility_timeout"}
_EXEC_OPTIONS = ("queue", "routing_key", "exchange", "priority", "expires", "delivery_mode",
                 "compression", "time_limit", "soft_time_limit", "immediate", "mandatory")

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_declared: set[tuple[str, str]] = set()  # (broker URL, queue) published to once through Celery
_tasks_plain: dict[int, tuple] = {}
_apps_plain: dict[int, bool] = {}
_origin: tuple[int, str] = (0, "")


def task_push(task, *, argsrepr: str, kwargsrepr: str, options: dict | None = None, **kwargs) -> None:
    """``task.apply_async(kwargs=kwargs, argsrepr=argsrepr, kwargsrepr=kwargsrepr, **options)``, written
    straight to the broker when that sends the very same message."""
    real = _task_plain(task)  # the task itself (``shared_task`` gives a proxy), None unless plain
    app = task.app if real is None else real.app
    conf = app.conf
    queue, url, timeout = _settings(conf)  # as read on every publish: the tests' worker has a queue of its own
    if options or real is None or not _direct(app, url, queue):
        declare = [] if (url, queue) in _declared else None
        task.apply_async(kwargs=kwargs, argsrepr=argsrepr, kwargsrepr=kwargsrepr, declare=declare,
                         **(options or {}))
        _declared.add((url, queue))
        return
    task_id = _uuid4()
    headers = {
        "lang": "py", "task": real.name, "id": task_id, "shadow": None, "eta": None, "expires": None,
        "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id,
        "parent_id": None, "argsrepr": argsrepr, "kwargsrepr": kwargsrepr, "origin": _origin_name(),
        "ignore_result": real.ignore_result, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
    }
    body = _json(((), kwargs, _EMBED)).encode()
    message = {
        "body": base64.b64encode(body).decode(), "content-encoding": "utf-8", "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id, "reply_to": app.thread_oid, "argsrepr": argsrepr, "kwargsrepr": kwargsrepr,
            "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": _uuid4(),
        },
    }
    _client(url, timeout).lpush(queue, _json(message))


_ENVIRON = ("CELERY_BROKER_WRITE_URL", "CELERY_BROKER_URL")  # what Celery's ``broker_write_url`` reads first
_read: tuple = ()


def _settings(conf) -> tuple[str, str, float | None]:
    """``(conf.task_default_queue, conf.broker_write_url, conf.broker_connection_timeout)``: ~45 us by Celery's
    lookups (each setting under several spellings in three maps, exceptions caught), read again only when
    something they come from changed: the configuration object, its maps (``add_defaults`` inserts one), the
    values assigned to it (``conf.x = ...``: its ``changes``, compared by value with a copy) and the two
    environment variables Celery reads before them. Its other maps are Django's ``CELERY_*`` settings, read once
    (``config.celery_app``), and Celery's defaults."""
    global _read
    maps, environ = conf.maps, tuple(os.environ.get(name) for name in _ENVIRON)
    read = _read
    if (read and read[0] is conf and len(read[1]) == len(maps) and all(map(operator.is_, read[1], maps))
            and read[2] == conf.changes and read[3] == environ):
        return read[4]
    values = (conf.task_default_queue, conf.broker_write_url, conf.broker_connection_timeout)
    # Kept only over maps known not to change in place: plain dicts (Celery's defaults) and ``frozen`` classes.
    if all(type(m) is dict or getattr(type(m), "frozen", False) for m in maps[1:]):
        _read = (conf, tuple(maps), dict(conf.changes), environ, values)
    return values


#: ``uuid.UUID``'s variant and version 4 bits, as ``UUID(bytes=..., version=4)`` sets them.
_UUID_CLEAR, _UUID_SET = ~((0xc000 << 48) | (0xf000 << 64)), (0x8000 << 48) | (4 << 76)


def _uuid4(random: bytes | None = None) -> str:
    """kombu's ``uuid()`` (``str(uuid.uuid4())``) of the same 16 random bytes, without building a ``UUID``: a
    quarter of its CPU, twice per publish (``core/tests/test_broker.py`` compares the two)."""
    value = int.from_bytes(os.urandom(16) if random is None else random, "big") & _UUID_CLEAR | _UUID_SET
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _json(value) -> str:
    """kombu's ``dumps`` (what Celery serializes a message with): the same text by the standard library's
    cached encoder for what JSON holds natively (kombu's encoder differs only in ``default``, called for
    nothing else; its ``cls`` made a new encoder per call); kombu's own for anything else."""
    try:
        return json.dumps(value)
    except TypeError:
        return dumps(value)


def _direct(app, url: str, queue: str) -> bool:
    """Whether ``apply_async`` would send nothing but the message ``task_push`` writes."""
    return (
        (url, queue) in _declared
        and url.startswith("redis://")  # the URL can change (the tests' broker outage): its scheme checked each time
        and app.current_worker_task is None
        and not signals.before_task_publish.receivers
        and not signals.after_task_publish.receivers
        and _app_plain(app)
    )


def _task_plain(task):
    """The task behind ``task`` if it has no execution options of its own (queue, priority, expiry, time
    limits...) and no shadow name; else None. Known once per task object."""
    known = _tasks_plain.get(id(task))
    if known is None:
        options = task._get_exec_options()
        plain = (all(options.get(name) is None for name in _EXEC_OPTIONS)
                 and options.get("serializer") in (None, "json")
                 and getattr(task.shadow_name, "__func__", None) is Task.shadow_name)
        real = task._get_current_object() if hasattr(task, "_get_current_object") else task
        known = _tasks_plain[id(task)] = (task, real if plain else None)  # the key's object kept alive
    return known[1]


def _app_plain(app) -> bool:
    """The configuration, read once per app: not eager, routed to the default queue on the default direct exchange,
    JSON, persistent, uncompressed, protocol 2, no SSL and no transport options a publisher reads."""
    plain = _apps_plain.get(id(app))
    if plain is None:
        conf = app.conf
        plain = (
            not conf.task_always_eager and not conf.task_routes and not conf.task_queues and conf.task_protocol == 2
            and conf.task_serializer == "json" and not conf.task_compression
            and conf.task_default_exchange_type == "direct" and conf.task_default_delivery_mode in (2, "persistent")
            and conf.task_default_priority is None and not conf.task_send_sent_event
            and not conf.task_time_limit and not conf.task_soft_time_limit
            and set(conf.broker_transport_options or {}) <= _CONSUMER_ONLY_OPTIONS
            and not conf.broker_use_ssl
        )
        _apps_plain[id(app)] = plain
    return plain


def _origin_name() -> str:
    """Celery's ``anon_nodename()`` (``gen<pid>@<host>``), made once per process."""
    global _origin
    pid = os.getpid()
    if _origin[0] != pid:
        _origin = (pid, anon_nodename())
    return _origin[1]


def _client(url: str, timeout: float | None) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                # Retried as Celery's default publish policy retries (3 times, at most 0.2 s apart), on
                # ``broker_connection_timeout`` as kombu connects.
                client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                              retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.2), 3))
                _clients[url] = client
    return client
