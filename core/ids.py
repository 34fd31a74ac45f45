"""Object ids with a type prefix (``pe_01JC...``), time-ordered like ULIDs."""
import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Two characters at a time: every 10-bit value's pair (1,024 of them), 13 look-ups per id instead of 26
#: (about a third of the time of a loop over characters: ``core/tests/test_ids.py`` holds the two equal).
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_SHIFTS = tuple(range(120, -1, -10))


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 Crockford base32 characters: 48 bits of milliseconds, 80 random bits."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{''.join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])}"


class IdFactory:
    """A picklable default for model id fields (migrations need a named callable)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("core.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)
