"""Reads of payouts. A client sees only its own sellers' objects."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, QuerySet, Sum
from django.utils import timezone

from core.models import ApiClient, IdempotencyRecord
from core.services import request_fingerprint
from payments import selectors as payment_selectors
from payments.services.postings import CAPTURE_KEY_PREFIX, CAPTURE_KEY_SUFFIX, REFUND_KEY_PREFIX
from payouts.models import NegativeBalanceWriteOff, Payout, PayoutAccount, PayoutState
from payouts.services.write_offs import WRITE_OFF_KEY_PREFIX
from wallet import selectors as wallet_selectors
from wallet.models import WalletMovement


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


# -- the seller's movements ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MovementLine:
    """One wallet movement as the seller sees it: the money, and the object behind it."""

    movement: WalletMovement
    source_type: str  # order, refund, dispute, payout, write_off; adjustment when no object is behind it
    source_id: str | None


_PAYOUT_KEY_PREFIX = "payout:"  # payouts.services.payout_posting_key: payout:<id>:created | :returned
_DISPUTE_KEY_PREFIX = "dispute:"  # disputes: dispute:<id>[:<what>]


def movement_source(idempotency_key: str) -> tuple[str, str | None]:
    """What is behind a wallet movement, read from the key it was posted under by the app that owns the
    object (``payments.services.postings``, ``payouts.services``): ``(type, id)``."""
    key = idempotency_key
    if key.startswith(CAPTURE_KEY_PREFIX) and key.endswith(CAPTURE_KEY_SUFFIX):
        return "order", key[len(CAPTURE_KEY_PREFIX):-len(CAPTURE_KEY_SUFFIX)]
    if key.startswith(REFUND_KEY_PREFIX):
        return "refund", key[len(REFUND_KEY_PREFIX):]
    if key.startswith(_PAYOUT_KEY_PREFIX) and key.count(":") == 2:
        return "payout", key.split(":")[1]
    if key.startswith(_DISPUTE_KEY_PREFIX):
        return "dispute", key.split(":")[1]
    if key.startswith(WRITE_OFF_KEY_PREFIX):
        return "write_off", None  # its id is the write-off row's (``movement_lines``)
    return "adjustment", None


def seller_movements(*, client: ApiClient, seller_id: str) -> QuerySet[WalletMovement] | None:
    """The seller's wallet movements, newest first (``None``: no such seller)."""
    if not seller_visible(client=client, seller_id=seller_id):
        return None
    return wallet_selectors.wallet_movements(owner_id=seller_id)


def movement_lines(movements: list[WalletMovement]) -> list[MovementLine]:
    """A page of movements with the object behind each (one query more when the page holds write-offs)."""
    sources = {m.idempotency_key: movement_source(m.idempotency_key) for m in movements}
    write_offs = [key for key, (kind, _) in sources.items() if kind == "write_off"]
    if write_offs:
        ids = dict(NegativeBalanceWriteOff.objects.filter(idempotency_key__in=write_offs)
                   .values_list("idempotency_key", "id"))
        sources.update({key: ("write_off", ids.get(key)) for key in write_offs})
    return [MovementLine(m, *sources[m.idempotency_key]) for m in movements]
# -- for reconciliation (it reads payouts only through these) -----------------------------------------
@dataclass(frozen=True)
class SettledPayout:
    """What reconciliation compares a settlement line with: a payout, its PSP objects and its state."""

    id: str
    seller_id: str
    state: str
    amount: int
    currency: str
    psp_transfer_id: str
    psp_payout_id: str
    completed_at: datetime | None


_SETTLED_FIELDS = ("id", "seller_id", "state", "amount", "currency", "psp_transfer_id", "psp_payout_id",
                   "completed_at")


def payouts_for_settlement(*, psp_references: Iterable[str] = (), payout_ids: Iterable[str] = ()
                           ) -> dict[str, SettledPayout]:
    """The payouts a settlement line can name, by each of their names: the PSP's transfer (``tr_...``) and payout
    (``po_...``) ids in ``psp_references``, our payout ids in ``payout_ids``. An empty name finds nothing."""
    references = sorted({r for r in psp_references if r})
    ids = sorted({i for i in payout_ids if i})
    by_name: dict[str, SettledPayout] = {}
    # One indexed lookup per name (``= ANY``), not an OR of them, which PostgreSQL would answer with a scan.
    for column, names in (("psp_transfer_id", references), ("psp_payout_id", references), ("id", ids)):
        if not names:
            continue
        for row in Payout.objects.filter(**{f"{column}__in": names}).order_by().values_list(*_SETTLED_FIELDS):
            payout = SettledPayout(*row)
            for name in (payout.id, payout.psp_transfer_id, payout.psp_payout_id):
                if name:
                    by_name[name] = payout
    return by_name


def payouts_paid_between(*, since: datetime | None, before: datetime, settled: QuerySet | None = None,
                         batch: int = 5000) -> Iterator[SettledPayout]:
    """Paid payouts the PSP paid (``completed_at``) in ``[since, before)`` (``since`` None: any time before),
    oldest first; with ``settled``, a subquery correlated on the payout's ``pk`` (``OuterRef("pk")``), not those
    it finds a row for (``NOT EXISTS``: one statement, however many payouts)."""
    rows = Payout.objects.filter(state=PayoutState.PAID, completed_at__lt=before)
    if since is not None:
        rows = rows.filter(completed_at__gte=since)
    if settled is not None:
        rows = rows.filter(~Exists(settled))
    rows = rows.order_by("completed_at", "id").values_list(*_SETTLED_FIELDS)
    for row in rows.iterator(chunk_size=batch):
        yield SettledPayout(*row)


def payouts_by_id(*, payout_ids: Iterable[str]) -> dict[str, SettledPayout]:
    """The payouts of ``payout_ids`` that exist."""
    return {row[0]: SettledPayout(*row) for row in
            Payout.objects.filter(pk__in=sorted(set(payout_ids))).values_list(*_SETTLED_FIELDS)}


def payout_amounts(*, payout_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
    """``id -> (state, amount)`` of the payouts of ``payout_ids`` that exist."""
    return {pid: (state, amount) for pid, state, amount in
            Payout.objects.filter(pk__in=sorted(set(payout_ids))).order_by().values_list("id", "state", "amount")}


def open_payout_totals() -> dict[str, int]:
    """``{currency: amount}`` of the payouts whose money has left the sellers' balances and not yet reached their
    banks nor come back (pending, in transit, dead letter): what ``liabilities:payouts_in_transit`` should hold."""
    rows = (Payout.objects.filter(state__in=[PayoutState.PENDING, PayoutState.IN_TRANSIT, PayoutState.DEAD_LETTER])
            .values_list("currency").annotate(total=Sum("amount")))
    return {currency: total for currency, total in rows}
