"""redis-py reads Redis's replies with hiredis's compiled parser (``requirements.txt``): the worker's consumer reads
and acknowledges every task through it, gunicorn publishes and counts rate limits through it. Without hiredis
redis-py falls back silently to its pure-Python parser (about 0.17 M instructions more per task's Redis round
trips): this fails instead."""
import redis
from django.conf import settings
from redis._parsers import _HiredisParser
from redis.utils import HIREDIS_AVAILABLE


def test_the_broker_and_the_rate_limiter_read_replies_with_hiredis():
    assert HIREDIS_AVAILABLE
    for url in (settings.CELERY_BROKER_URL, settings.CACHES[settings.RATE_LIMIT_CACHE]["LOCATION"]):
        client = redis.Redis.from_url(url)
        connection = client.connection_pool.get_connection()
        try:
            assert isinstance(connection._parser, _HiredisParser)
            assert connection.send_command("PING") is None and connection.read_response() in (b"PONG", "PONG")
        finally:
            client.connection_pool.release(connection)
            client.close()
