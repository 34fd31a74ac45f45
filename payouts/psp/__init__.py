"""``get_payout_provider()`` returns the configured money-out adapter (one per process and PSP URL)."""
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from payouts.psp.base import PayoutProvider


def get_payout_provider() -> PayoutProvider:
    return _provider(settings.PAYOUTS_PSP_ADAPTER, settings.PSP_API_BASE)


@lru_cache(maxsize=4)
def _provider(adapter: str, api_base: str) -> PayoutProvider:
    return import_string(adapter)(api_base=api_base)
