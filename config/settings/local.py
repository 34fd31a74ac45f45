"""Developer machine: DEBUG on unless told otherwise."""
from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# The sandbox's search lags 2 s (Stripe's: up to a minute or more; production keeps the base default).
PSP_SEARCH_CONSISTENCY_SECONDS = env.float("PSP_SEARCH_CONSISTENCY_SECONDS", default=10.0)
