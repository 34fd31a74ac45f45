"""``core.broker.task_push`` writes the message Celery's ``apply_async`` writes, and falls back to it."""
from __future__ import annotations

import json
import random
import uuid
from contextlib import contextmanager
from unittest import mock

import pytest
import redis
from celery import signals
from celery.app.base import Celery
from kombu.exceptions import OperationalError

from config.celery_app import app
from core import broker
from core.broker import task_push
from payments.tasks import payment_event_execute_task, payment_order_execute_task
from payments.tests.chaos_schedule import broker_unreachable


@contextmanager
def own_queue():
    """A queue nobody consumes, as the task's default queue (the tests' worker has its own: put back after)."""
    queue, real = f"test-broker-{uuid.uuid4().hex[:10]}", app.conf.task_default_queue
    client = redis.Redis.from_url(app.conf.broker_write_url)
    app.conf.task_default_queue = queue
    try:
        yield queue, client
    finally:
        app.conf.task_default_queue = real
        client.delete(queue)
        client.close()


def pushed(client, queue: str) -> list[dict]:
    """The queue's messages, oldest first."""
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]


def masked(message: dict) -> str:
    """The message with its fresh ids replaced, keys in their order."""
    message = json.loads(json.dumps(message))
    task_id = message["headers"]["id"]
    assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
    for part, key in (("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
                      ("properties", "delivery_tag")):
        uuid.UUID(message[part][key])
        message[part][key] = "<id>"
    return json.dumps(message)


@contextmanager
def celery_sends():
    with mock.patch.object(Celery, "send_task", autospec=True, side_effect=Celery.send_task) as sent:
        yield sent


@pytest.mark.parametrize("task, kwargs", [
    (payment_event_execute_task, {"payment_event_id": "pe_0123456789abcdefghjkmnpqrs"}),
    (payment_order_execute_task, {"payment_order_id": "po_\"quoted\" 'and' \\ ünïcode"}),
])
def test_the_message_pushed_is_the_one_celery_sends(task, kwargs):
    with own_queue() as (queue, client), celery_sends() as sent:
        task_push(task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)  # first to the queue: Celery declares it
        assert sent.call_count == 1
        task_push(task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)
        assert sent.call_count == 1, "the second publish went through Celery"
        task.apply_async(kwargs=kwargs, argsrepr="()", kwargsrepr=repr(kwargs), declare=[])
        celerys_first, ours, celerys = pushed(client, queue)
    assert masked(ours) == masked(celerys) == masked(celerys_first)
    assert ours["headers"]["id"] != celerys["headers"]["id"]
    assert ours["properties"]["delivery_tag"] != ours["headers"]["id"]
    assert ours["properties"]["delivery_info"]["routing_key"] == queue


def test_options_and_publish_signals_go_through_celery():
    kwargs = {"payment_event_id": "pe_x"}
    with own_queue() as (queue, client), celery_sends() as sent:
        task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)
        task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), options={"countdown": 5},
                  **kwargs)
        assert sent.call_count == 2

        def receiver(**_):
            pass

        signals.before_task_publish.connect(receiver)
        try:
            task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)
        finally:
            signals.before_task_publish.disconnect(receiver)
        assert sent.call_count == 3
        task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)
        assert sent.call_count == 3
        assert len(pushed(client, queue)) == 4
        assert pushed(client, queue)[1]["headers"]["eta"] is not None


def test_an_unreachable_broker_raises():
    """The caller publishes on commit with ``robust=True``: the error is logged, the sweeper sends it later."""
    kwargs = {"payment_event_id": "pe_x"}
    with own_queue() as (queue, _), broker_unreachable():
        with pytest.raises(OperationalError):  # Celery's first publish (it declares the queue)
            task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)
        broker._declared.add((app.conf.broker_write_url, queue))  # as if declared: straight to Redis
        with pytest.raises(redis.exceptions.ConnectionError):
            task_push(payment_event_execute_task, argsrepr="()", kwargsrepr=repr(kwargs), **kwargs)


def test_the_settings_read_once_follow_every_change(monkeypatch):
    """``task_push`` reads the queue, the broker URL and its timeout as Celery gives them, on every publish, though
    it keeps them while nothing they come from changed."""
    conf = app.conf

    def same() -> bool:
        return broker._settings(conf) == (conf.task_default_queue, conf.broker_write_url,
                                          conf.broker_connection_timeout)

    assert same() and same()
    real, inserted = dict(conf.changes), None
    try:
        for name, value in [("task_default_queue", "q-1"), ("broker_connection_timeout", 7),
                            ("broker_url", "redis://127.0.0.1:6379/14"), ("task_default_queue", "q-2")]:
            setattr(conf, name, value)
            assert same()
        conf["CELERY_TASK_DEFAULT_QUEUE"] = "q-3"  # the namespaced spelling
        assert same()
        monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
        assert same()
        monkeypatch.setenv("CELERY_BROKER_WRITE_URL", "redis://127.0.0.1:6379/11")
        assert same() and broker._settings(conf)[1] == "redis://127.0.0.1:6379/11"
        monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
        conf.broker_write_url = "redis://127.0.0.1:6379/10"
        assert same()
        del conf.changes["broker_write_url"]
        assert same()
        del conf.changes["broker_connection_timeout"]
        assert same()
        inserted = {"broker_connection_timeout": 9}
        app.add_defaults(inserted)  # a map inserted before Django's settings
        assert same() and broker._settings(conf)[2] == 9
    finally:
        conf.changes.clear()
        conf.changes.update(real)
        for maps in (conf.maps, conf.defaults):
            maps[:] = [m for m in maps if m is not inserted]
    assert same()


def test_the_task_ids_are_kombus_uuid4s():
    rng = random.Random(4)
    values = [bytes(16), b"\xff" * 16, *(rng.randbytes(16) for _ in range(20000))]
    assert all(broker._uuid4(raw) == str(uuid.UUID(bytes=raw, version=4)) for raw in values)
    assert uuid.UUID(broker._uuid4()).version == 4 and broker._uuid4() != broker._uuid4()
