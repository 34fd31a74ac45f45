"""References found in free text: a PSP payout id in a bank line's remittance information."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A Stripe payout id ("po_1Nxyz...") or an Adyen payout description
# ("TX3488899933XT batch 3, MerchantAccount" -> the batch number "3").
_STRIPE_PAYOUT_RE = re.compile(r"(?<![A-Za-z0-9_])(po_[A-Za-z0-9]{3,})")
_ADYEN_PAYOUT_RE = re.compile(r"\bTX\w+XT batch (\d+)\b")


def find_payout_reference(texts: Iterable[str | None]) -> str | None:
    """A PSP payout id mentioned in free text (bank remittance info, references)."""
    texts = [t for t in texts if t]
    for text in texts:
        match = _STRIPE_PAYOUT_RE.search(text)
        if match:
            return match.group(1)
    for text in texts:
        match = _ADYEN_PAYOUT_RE.search(text)
        if match:
            return match.group(1)
    return None
