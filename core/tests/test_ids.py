"""Object ids: ``new_id`` writes the 130 bits (48 of milliseconds, 80 random) as 26 Crockford base32 characters,
two at a time; the same characters as one at a time, most significant first."""
import random
from unittest import mock

import pytest

from core.ids import _CROCKFORD, new_id


def _one_at_a_time(prefix: str, value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


_RANDOM = random.Random(8)
_VALUES = [(0, 0), (1, 0), (0, 1), (2**48 - 1, 2**80 - 1), (2**47, 2**79), (1_765_000_000_000, 0),
           *((_RANDOM.getrandbits(48), _RANDOM.getrandbits(80)) for _ in range(2000))]


@pytest.mark.parametrize("prefix", ["pe", "ord", "x"])
def test_the_id_is_its_bits_in_crockford_base32(prefix):
    for millis, random_bits in _VALUES:
        with mock.patch("core.ids.time.time", return_value=millis / 1000 + 0.0001), \
                mock.patch("core.ids.os.urandom", return_value=random_bits.to_bytes(10, "big")):
            made = new_id(prefix)
        assert made == _one_at_a_time(prefix, (millis << 80) | random_bits), (millis, random_bits)
        assert len(made) == len(prefix) + 27


def test_ids_sort_by_their_millisecond():
    with mock.patch("core.ids.time.time", return_value=1_765_000_000.000):
        first = new_id("pe")
    with mock.patch("core.ids.time.time", return_value=1_765_000_000.001):
        second = new_id("pe")
    assert first < second
