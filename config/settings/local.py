"""Developer machine: DEBUG on unless told otherwise."""
from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The bundled sandbox's values: public, so they live only here and in test.py.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key")
PSP_API_KEY = env("PSP_API_KEY", default="sk_test_sandbox")
PSP_WEBHOOK_SECRET = env("PSP_WEBHOOK_SECRET", default="whsec_sandbox_secret")
# The sandbox's search lags 2 s (Stripe's: up to a minute or more; production keeps the base default).
PSP_SEARCH_CONSISTENCY_SECONDS = env.float("PSP_SEARCH_CONSISTENCY_SECONDS", default=10.0)
NOTIFICATIONS_ALLOW_PRIVATE_DESTINATIONS = True  # the demo shop and the tests listen on 127.0.0.1
