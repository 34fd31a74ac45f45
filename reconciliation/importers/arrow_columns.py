"""Column-wise checks and conversions the Arrow readers share (``stripe_arrow``, ``adyen_arrow``).

A check says, per row, whether the row parser would read a value exactly as the conversion does; the
conversions run only on rows every check passed. No regular expressions: kernels that look at each
string once (``ascii_is_decimal``, ``find_substring``, ``strptime`` read back by ``strftime``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC

import pyarrow as pa
import pyarrow.compute as pc

from reconciliation.record_types import RecordType

from .chunks import CopyChunk
from .fees import arrow_line_fees

NULL = "\\N"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Whole digits an amount may have to be converted here (with four decimals it still fits an int64);
#: longer ones go to the row parser.
_WHOLE_DIGITS = 14
_PAYOUT = RecordType.PAYOUT.value
_CHARGE = RecordType.CHARGE.value
#: Fees are summed per (payout, currency) with a mask each up to this many pairs in a block; past it by
#: group_by, whose fixed cost (~2 ms a block) is more than a few masks.
_FEW_GROUPS = 8


def trim(array: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(array)


def empty(count: int) -> pa.Array:
    return repeated("", count)


def repeated(text: str, count: int) -> pa.Array:
    """``count`` times ``text`` (``pa.repeat``: 8x cheaper than converting a list of them)."""
    return pa.repeat(pa.scalar(text, pa.string()), count)


def column(batch: pa.RecordBatch, position: int | None) -> pa.Array:
    """The trimmed column at ``position``; empty strings for a column the header does not have."""
    return empty(batch.num_rows) if position is None else trim(batch.column(position))


def first_nonempty(batch: pa.RecordBatch, positions: list[int]) -> pa.Array:
    """Per row, the first of the columns that is not empty after trimming; ``""`` for none."""
    if not positions:
        return empty(batch.num_rows)
    values = [trim(batch.column(position)) for position in positions]
    if len(values) == 1:
        return values[0]
    nullable = [pc.if_else(pc.equal(value, ""), pa.scalar(None, pa.string()), value) for value in values]
    return pc.fill_null(pc.coalesce(*nullable), "")


def copy_text(array: pa.Array) -> pa.Array:
    """A column as COPY text: ``\\N`` for null."""
    return pc.fill_null(pc.cast(array, pa.string()), NULL)


def all_of(checks: list[pa.Array]) -> pa.Array:
    """Rows that pass every check; a null (an unparsable time, say) counts as a failed check."""
    every = checks[0]
    for check in checks[1:]:
        every = pc.and_kleene(every, check)
    return pc.fill_null(every, False)


def plain_text(raw: pa.Array) -> pa.Array:
    """Rows of printable ASCII (no control character: the row parser's ``strip`` and ``split`` would see
    whitespace the trimming here does not) holding something besides separators and spaces."""
    blank = pc.equal(pc.replace_substring(pc.replace_substring(raw, ",", ""), " ", ""), "")
    return pc.and_(pc.ascii_is_printable(raw), pc.invert(blank))


def _amount_parts(value: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """An amount's sign, its digits without the point, and the lengths of its whole and decimal parts."""
    negative = pc.starts_with(value, "-")
    unsigned = pc.if_else(negative, pc.utf8_slice_codeunits(value, 1), value)
    point = pc.find_substring(unsigned, ".")
    length = pc.utf8_length(unsigned)
    has_point = pc.greater_equal(point, 0)
    whole = pc.if_else(has_point, point, length)
    decimals = pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0)
    digits = pc.replace_substring(unsigned, ".", "", max_replacements=1)
    return negative, digits, whole, decimals


def amounts(value: pa.Array, exponent: pa.Array | int, *, optional: bool = True) -> tuple[pa.Array, pa.Array]:
    """Per row, whether ``value`` is an amount ``amounts.minor_units`` reads on its fast path (``-?D+(.D+)?`` in
    ASCII digits with at most ``exponent`` decimals, at most 14 whole digits; ``optional``: or empty), and the
    amounts as minor units of a currency of ``exponent`` (null where empty or not such an amount). A column
    empty throughout (most of a report's fee and debit columns) costs one comparison."""
    present = pc.not_equal(value, "")
    if not pc.any(present).as_py():
        return pa.repeat(optional, len(value)), pa.nulls(len(value), pa.int64())
    negative, digits, whole, decimals = _amount_parts(value)
    ok = pc.and_kleene(pc.and_(pc.ascii_is_decimal(digits), pc.greater_equal(whole, 1)),
                       pc.and_kleene(pc.less_equal(whole, _WHOLE_DIGITS), pc.less_equal(decimals, exponent)))
    # "1." has no decimal digit: the row parser's strict path reads it, not this one.
    ok = pc.fill_null(pc.and_(ok, pc.invert(pc.ends_with(value, "."))), False)
    units = pc.cast(pc.if_else(ok, digits, "0"), pa.int64())
    scale = pc.if_else(ok, pc.cast(pc.subtract(exponent, decimals), pa.int64()), 0)
    units = pc.multiply(units, pc.power(10, scale))
    units = pc.if_else(ok, pc.if_else(negative, pc.negate(units), units), pa.scalar(None, pa.int64()))
    return (pc.or_(pc.invert(present), ok) if optional else ok), units


def parse_times(value: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``YYYY-MM-DD HH:MM:SS`` (or with a ``T``) as naive times, and per row whether that is what the row
    parser reads: a real time (``strptime`` rolls "02-30" over into March: a real one reads back the
    same) in years 2 to 9998 (so that a time zone cannot move it out of ``datetime``'s range), or none.
    Read back by a cast to text (``YYYY-MM-DD HH:MM:SS``), 30 times cheaper than ``strftime``."""
    spaced = pc.replace_substring(value, "T", " ")
    parsed = pc.strptime(spaced, format=TIME_FORMAT, unit="s", error_is_null=True)
    real = pc.equal(pc.cast(parsed, pa.string()), spaced)
    year = pc.year(parsed)
    in_range = pc.and_(pc.greater_equal(year, 2), pc.less_equal(year, 9998))
    return parsed, pc.or_(pc.equal(value, ""), pc.and_kleene(real, in_range))


def utc_text(utc: pa.Array, present: pa.Array) -> pa.Array:
    """UTC times as the row parser writes them (``datetime.isoformat``); ``\\N`` where ``present`` is false."""
    iso = pc.replace_substring(pc.cast(utc, pa.string()), " ", "T", max_replacements=1)  # strftime is slow
    stamp = pc.binary_join_element_wise(iso, "+00:00", "")
    return pc.if_else(present, stamp, NULL)


def sum_up(chunk: CopyChunk, record_type: pa.Array, created_at: pa.Array, payout: pa.Array, currency: pa.Array,
           fee: pa.Array, net: pa.Array) -> None:
    """What the import sums up of a block: lines per type, latest times (UTC), fees per payout and currency."""
    chunk.counts = Counter({item["values"]: item["counts"] for item in pc.value_counts(record_type).to_pylist()})
    latest = pc.max(created_at).as_py()
    chunk.latest = latest.replace(tzinfo=UTC) if latest else None
    payouts = pc.equal(record_type, _PAYOUT)
    latest_payout = pc.max(pc.filter(created_at, payouts)).as_py() if pc.any(payouts).as_py() else None
    chunk.latest_payout = latest_payout.replace(tzinfo=UTC) if latest_payout else None
    amount, fee_bearing = arrow_line_fees(record_type, fee, net)
    payouts, currencies = pc.unique(payout).to_pylist(), pc.unique(currency).to_pylist()
    if len(payouts) * len(currencies) <= _FEW_GROUPS:  # a report's block: one batch, a currency or two
        for payout_reference in payouts:
            of_payout = pc.and_(fee_bearing, pc.equal(payout, payout_reference))
            for code in currencies:
                lines = pc.and_(of_payout, pc.equal(currency, code))
                count = pc.sum(pc.cast(lines, pa.int64())).as_py()
                if count:
                    chunk.add_fee(payout_reference, code, pc.sum(pc.filter(amount, lines)).as_py(), count)
        return
    fees = pa.table({"payout": payout, "currency": currency, "amount": amount}).filter(fee_bearing)
    for group in fees.group_by(["payout", "currency"]).aggregate([("amount", "sum"), ("amount", "count")]).to_pylist():
        chunk.add_fee(group["payout"], group["currency"], group["amount_sum"], group["amount_count"])


def references_split(record_type: pa.Array, psp: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The non-empty PSP references of the charge rows (``CopyChunk.charge_references``), and of the others."""
    charge, present = pc.equal(record_type, _CHARGE), pc.not_equal(psp, "")
    return pc.filter(psp, pc.and_(charge, present)), pc.filter(psp, pc.and_(pc.invert(charge), present))


def write_rows(columns: list[pa.Array], count: int) -> CopyChunk:
    """Columns of ``settlement_line`` (file id first) as a chunk of COPY text."""
    import pyarrow.csv as pacsv

    table = pa.table(columns, names=[f"c{n}" for n in range(len(columns))])
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, delimiter="\t",
                                                                 quoting_style="none"))
    return CopyChunk(text=sink.getvalue().to_pybytes(), rows=count)
