"""Test settings: the real PostgreSQL and Redis; pytest-django creates test_<name>."""
from .base import *  # noqa: F401,F403
from .base import env

SECRET_KEY = "test-only"
PSP_API_KEY = env("PSP_API_KEY", default="sk_test_sandbox")
PSP_WEBHOOK_SECRET = env("PSP_WEBHOOK_SECRET", default="whsec_sandbox_secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The test process opens plain connections (pytest-django swaps databases under them); the
# Celery worker the tests start runs with the pool, as in production (conftest.py).
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
if not env.bool("DATABASE_POOL_IN_TESTS", default=False):
    DATABASES["default"].get("OPTIONS", {}).pop("pool", None)  # noqa: F405
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/5")
# Rate limits out of the way of the suite (its live servers are one IP); core/tests/test_rate_limits.py sets
# low ones itself, under a key prefix of its own.
RATE_LIMIT_API_KEY = env("RATE_LIMIT_API_KEY", default="1000000/s")
RATE_LIMIT_ANONYMOUS = env("RATE_LIMIT_ANONYMOUS", default="1000000/s")
RATE_LIMIT_WEBHOOK = env("RATE_LIMIT_WEBHOOK", default="1000000/s")
CACHES["ratelimit"]["LOCATION"] = env("RATE_LIMIT_REDIS_URL", default="redis://127.0.0.1:6379/3")  # noqa: F405
CACHES["ratelimit"]["KEY_PREFIX"] = env("RATE_LIMIT_KEY_PREFIX", default="test-ratelimit")  # noqa: F405
PAYMENT_RETRY_BASE_SECONDS = env.float("PAYMENT_RETRY_BASE_SECONDS", default=0.2)
PAYMENT_RETRY_MAX_SECONDS = env.float("PAYMENT_RETRY_MAX_SECONDS", default=2.0)
PSP_TIMEOUT_SECONDS = env.float("PSP_TIMEOUT_SECONDS", default=2.0)
PSP_SEARCH_CONSISTENCY_SECONDS = env.float("PSP_SEARCH_CONSISTENCY_SECONDS", default=3.0)  # sandbox lag: 2 s
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests serve no static files: whitenoise would only warn that STATIC_ROOT is not collected.
MIDDLEWARE = [m for m in MIDDLEWARE if m != "whitenoise.middleware.WhiteNoiseMiddleware"]  # noqa: F405
NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = True  # the demo shop and the tests listen on 127.0.0.1
