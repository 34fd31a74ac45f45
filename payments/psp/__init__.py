"""``get_psp()`` returns the configured adapter (one per process)."""
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from payments.psp.base import PaymentServiceProvider


@lru_cache(maxsize=1)
def get_psp() -> PaymentServiceProvider:
    return import_string(getattr(settings, "PSP_ADAPTER", "payments.psp.stripe_adapter.StripeAdapter"))()
