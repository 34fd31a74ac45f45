"""Reads of payouts. A client sees only its own sellers' objects."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from core.models import ApiClient, IdempotencyRecord
from core.services import request_fingerprint
from payments import selectors as payment_selectors
from payouts.models import Payout, PayoutAccount, PayoutState
from wallet import selectors as wallet_selectors


def payout_account_get(*, client: ApiClient, seller_id: str) -> PayoutAccount | None:
    return PayoutAccount.objects.filter(seller__client=client, seller_id=seller_id).select_related("seller").first()


def idempotency_answer_expected(*, client: ApiClient, key: str | None, method: str, path: str, body: bytes
                                ) -> bool:
    """Whether the request will be answered without running: a refused key (400), a stored response
    (the replay), or another request's key (422). Then the PSP is not asked (``core.services`` decides)."""
    if not key or len(key) > 255 or not key.isprintable():
        return True
    record = IdempotencyRecord.objects.filter(
        client=client, key=key,
        created_at__gte=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)).first()
    if record is None:
        return False
    if record.request_fingerprint != request_fingerprint(method=method, path=path, body=body):
        return True
    return record.status == IdempotencyRecord.Status.COMPLETED


def seller_balance(*, client: ApiClient, seller_id: str, as_of: datetime | None = None
                   ) -> list[wallet_selectors.WalletBuckets] | None:
    """The seller's wallets split into available, pending and reserved (``None``: no such seller)."""
    if payment_selectors.seller_get(client=client, seller_id=seller_id) is None:
        return None
    return wallet_selectors.wallet_buckets(owner_id=seller_id, as_of=as_of)


def payout_list(*, client: ApiClient, seller_id: str) -> QuerySet[Payout]:
    return Payout.objects.filter(seller__client=client, seller_id=seller_id)


def payout_get(*, client: ApiClient, payout_id: str) -> Payout | None:
    return Payout.objects.filter(seller__client=client, pk=payout_id).first()


def seller_visible(*, client: ApiClient, seller_id: str) -> bool:
    return payment_selectors.seller_get(client=client, seller_id=seller_id) is not None


def open_payout_totals() -> dict[str, int]:
    """``{currency: amount}`` of the payouts whose money has left the sellers' balances and not yet reached their
    banks nor come back (pending, in transit, dead letter): what ``liabilities:payouts_in_transit`` should hold."""
    rows = (Payout.objects.filter(state__in=[PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER])
            .values_list("currency").annotate(total=Sum("amount")))
    return {currency: total for currency, total in rows}
