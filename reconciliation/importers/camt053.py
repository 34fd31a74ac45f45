"""ISO 20022 camt.053 (BankToCustomerStatement) bank statements.

Streams with ``iterparse`` (defusedxml's when installed: no DTDs' entities, no
external references) and detaches every processed ``Ntry`` (and ``Stmt``) from its
parent, so memory stays flat on a huge file. Elements are matched by local name, so
the camt namespace may be the default one or bound to a prefix (``<camt:Document>``).

Per ``Stmt`` a ``FileHeader`` comes first: ``Stmt/Id``, the account IBAN (or other
id), opening balance ``OPBD`` (``PRCD``, the previous closing balance, when the bank
sends no ``OPBD``) and closing balance ``CLBD``, signed by their ``CdtDbtInd``.

Then one ``SettlementRecord`` per ``TxDtls`` of an entry (a batch entry gives several)
or one per ``Ntry`` without ``TxDtls``; ``line_number`` is the entry's ordinal in the
file. ``CRDT`` is a ``bank_credit`` with a positive ``net``, ``DBIT`` a ``bank_debit``
with a negative one; ``gross`` and ``fee`` are ``None``. References:
``psp_reference`` is the bank's ``AcctSvcrRef``; ``merchant_reference`` the
``EndToEndId`` (unless ``NOTPROVIDED``), else the remittance information; and
``payout_reference`` a PSP payout id found in the references or remittance text.

Entries whose status is not booked (``Sts`` ``PDNG``/``INFO``) are skipped: they are
not in the booked balances and come again, booked, on a later statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from core.money import format_amount
from reconciliation.record_types import RecordType

from .amounts import currency_of, minor_units
from .dates import midnight_utc, parse_datetime
from .errors import ImportFormatError, RowError
from .records import FileHeader, MalformedRecord, SettlementRecord
from .references import find_payout_reference
from .text import excerpt

try:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse as _defused_iterparse
except ImportError:  # pragma: no cover - defusedxml is a dependency
    _defused_iterparse = None

    class DefusedXmlException(ValueError):  # type: ignore[no-redef]
        pass


def _iterparse(path: Path):
    """``(event, element)`` pairs; DTDs and entities are refused."""
    events = ("start", "end")
    if _defused_iterparse is not None:
        return _defused_iterparse(str(path), events=events, forbid_dtd=True)
    # pragma: no cover - without defusedxml: expat never fetches external entities
    # and (expat >= 2.4.1) limits entity expansion.
    from xml.etree.ElementTree import iterparse

    return iterparse(str(path), events=events)


FORMAT = "camt053"
BOOKED = "BOOK"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _child(elem: Element | None, *path: str) -> Element | None:
    """The first descendant following ``path`` (local names), or ``None``."""
    for name in path:
        if elem is None:
            return None
        elem = next((c for c in elem if _local(c.tag) == name), None)
    return elem


def _children(elem: Element | None, name: str) -> list[Element]:
    if elem is None:
        return []
    return [c for c in elem if _local(c.tag) == name]


def _text(elem: Element | None, *path: str) -> str | None:
    found = _child(elem, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


class _Statement:
    __slots__ = ("id", "account", "currency", "balances", "header_sent")

    def __init__(self) -> None:
        self.id: str | None = None
        self.account: str | None = None
        self.currency: str | None = None
        self.balances: dict[str, int] = {}
        self.header_sent = False

    def read_account(self, acct: Element) -> None:
        self.account = _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")
        ccy = _text(acct, "Ccy")
        if ccy:
            self.currency = currency_of(ccy, "Acct/Ccy")

    def read_balance(self, bal: Element) -> None:
        code = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "CdOrPrtry", "Prtry")
        amt = _child(bal, "Amt")
        if code is None or amt is None:
            return
        currency = currency_of(amt.get("Ccy"), f"Bal {code} Amt/@Ccy")
        amount = minor_units(amt.text or "", currency, f"Bal {code} Amt")
        if _text(bal, "CdtDbtInd") == "DBIT":
            amount = -amount
        self.balances.setdefault(code.upper(), amount)
        if self.currency is None:
            self.currency = currency

    def header(self) -> FileHeader:
        self.header_sent = True
        balances = self.balances
        opening = balances.get("OPBD", balances.get("PRCD"))
        return FileHeader(
            format=FORMAT,
            statement_id=self.id,
            account=self.account,
            currency=self.currency,
            opening_balance=opening,
            closing_balance=balances.get("CLBD"),
        )


def iter_camt053(path: Path) -> Iterator[FileHeader | SettlementRecord | MalformedRecord]:
    stack: list[Element] = []
    statement: _Statement | None = None
    ordinal = 0
    try:
        for event, elem in _iterparse(path):
            name = _local(elem.tag)
            if event == "start":
                if not stack:
                    _check_root(path, elem)
                stack.append(elem)
                if name == "Stmt":
                    statement = _Statement()
                elif name == "Ntry" and statement is not None and not statement.header_sent:
                    yield statement.header()
                continue

            stack.pop()
            parent = stack[-1] if stack else None
            if parent is None or statement is None:
                continue
            parent_name = _local(parent.tag)
            if name == "Stmt":
                if not statement.header_sent:
                    yield statement.header()
                statement = None
                parent.remove(elem)
            elif parent_name == "Stmt":
                if name == "Ntry":
                    ordinal += 1
                    yield from _entry_records(elem, ordinal)
                    parent.remove(elem)
                elif name == "Id":
                    statement.id = (elem.text or "").strip() or None
                elif name in ("Acct", "Bal"):
                    try:
                        if name == "Acct":
                            statement.read_account(elem)
                        else:
                            statement.read_balance(elem)
                    except RowError as exc:
                        # Statement-level problem: numbered as the next entry.
                        yield MalformedRecord(ordinal + 1, f"statement {statement.id}: {exc}", _xml_excerpt(elem))
    except DefusedXmlException as exc:
        raise ImportFormatError(f"{path.name}: refused XML construct: {exc!r}") from None
    except ParseError as exc:
        # Cannot go on after broken XML; what was read so far has been yielded.
        yield MalformedRecord(ordinal + 1, f"XML is not well-formed: {exc}", "")


def _check_root(path: Path, root: Element) -> None:
    namespace = _namespace(root.tag)
    if _local(root.tag) != "Document" or (namespace and "camt.053" not in namespace):
        raise ImportFormatError(f"{path.name}: not a camt.053 statement (root {root.tag!r})")


def _xml_excerpt(elem: Element) -> str:
    return excerpt(" ".join(t.strip() for t in elem.itertext() if t.strip()))


def _booking_time(ntry: Element) -> datetime | None:
    for holder in ("BookgDt", "ValDt"):
        day = _text(ntry, holder, "Dt")
        if day:
            try:
                return midnight_utc(date.fromisoformat(day[:10]))
            except ValueError:
                raise RowError(f"{holder}/Dt is not a date: {day!r}") from None
        moment = _text(ntry, holder, "DtTm")
        if moment:
            return parse_datetime(moment, f"{holder}/DtTm")
    return None


def _entry_records(ntry: Element, ordinal: int) -> Iterator[SettlementRecord | MalformedRecord]:
    status = _text(ntry, "Sts") or _text(ntry, "Sts", "Cd")
    if status and status.upper() != BOOKED:
        return
    txs = _children(_child(ntry, "NtryDtls"), "TxDtls")
    try:
        entry_amt = _child(ntry, "Amt")
        if entry_amt is None:
            raise RowError("entry has no Amt")
        entry_currency = currency_of(entry_amt.get("Ccy"), "Ntry/Amt/@Ccy")
        entry_amount = _amount(entry_amt, entry_currency, "Ntry/Amt")
        indicator = _text(ntry, "CdtDbtInd")
        occurred_at = _booking_time(ntry)
    except RowError as exc:
        yield MalformedRecord(ordinal, str(exc), _xml_excerpt(ntry))
        return

    if not txs:
        try:
            yield _record(ntry, None, ordinal, "", indicator, entry_currency, entry_amount, occurred_at)
        except RowError as exc:
            yield MalformedRecord(ordinal, str(exc), _xml_excerpt(ntry))
        return

    for index, tx in enumerate(txs, start=1):
        label = f" TxDtls {index}/{len(txs)}" if len(txs) > 1 else ""
        try:
            currency, amount = entry_currency, entry_amount
            if len(txs) > 1:
                currency, amount = _tx_amount(tx, entry_currency)
            tx_indicator = _text(tx, "CdtDbtInd") or indicator
            yield _record(ntry, tx, ordinal, label, tx_indicator, currency, amount, occurred_at)
        except RowError as exc:
            yield MalformedRecord(ordinal, f"{label.strip() or 'TxDtls'}: {exc}", _xml_excerpt(tx))


def _amount(amt: Element, currency: str, where: str) -> int:
    text = (amt.text or "").strip()
    if text.startswith("-"):
        raise RowError(f"{where} is negative: {text!r} (the sign is CdtDbtInd)")
    return minor_units(text, currency, where)


def _tx_amount(tx: Element, entry_currency: str) -> tuple[str, int]:
    """A batch transaction's own amount, in the entry's currency."""
    for path in (("Amt",), ("AmtDtls", "TxAmt", "Amt"), ("AmtDtls", "InstdAmt", "Amt")):
        amt = _child(tx, *path)
        if amt is None:
            continue
        currency = currency_of(amt.get("Ccy"), "/".join(path) + "/@Ccy")
        if currency != entry_currency:
            continue
        return currency, _amount(amt, currency, "/".join(path))
    raise RowError(f"batch transaction has no amount in {entry_currency.upper()}")


def _record(
    ntry: Element,
    tx: Element | None,
    ordinal: int,
    label: str,
    indicator: str | None,
    currency: str,
    amount: int,
    occurred_at: datetime | None,
) -> SettlementRecord:
    if indicator == "CRDT":
        record_type, net = RecordType.BANK_CREDIT, amount
    elif indicator == "DBIT":
        record_type, net = RecordType.BANK_DEBIT, -amount
    else:
        raise RowError(f"CdtDbtInd is not CRDT or DBIT: {indicator!r}")

    bank_ref = _text(tx, "Refs", "AcctSvcrRef") or _text(ntry, "AcctSvcrRef")
    end_to_end = _text(tx, "Refs", "EndToEndId")
    if end_to_end and end_to_end.upper() == "NOTPROVIDED":
        end_to_end = None
    unstructured = (
        " ".join(" ".join(u.text.split()) for u in _children(_child(tx, "RmtInf"), "Ustrd") if u.text) or None
    )
    structured = [
        r.text.strip()
        for strd in _children(_child(tx, "RmtInf"), "Strd")
        for r in strd.iter()
        if _local(r.tag) == "Ref" and r.text and r.text.strip()
    ]
    batch_id = _text(ntry, "NtryDtls", "Btch", "PmtInfId") or _text(tx, "Refs", "PmtInfId")
    tx_info = _text(tx, "AddtlTxInf")
    entry_info = _text(ntry, "AddtlNtryInf")
    merchant_reference = (
        end_to_end or unstructured or (structured[0] if structured else None) or batch_id or tx_info or entry_info
    )
    ref_texts = [_text(tx, "Refs", n) for n in ("EndToEndId", "TxId", "InstrId", "PmtInfId")]
    payout_reference = find_payout_reference(
        [unstructured, *structured, *ref_texts, tx_info, _text(ntry, "NtryRef"), entry_info]
    )
    day = occurred_at.date().isoformat() if occurred_at else "?"
    source = (
        f"Ntry {ordinal}{label}: {indicator} {format_amount(amount, currency)} booked {day}"
        f" ref {bank_ref or '-'} {merchant_reference or ''}"
    )
    return SettlementRecord(
        line_number=ordinal,
        record_type=record_type,
        raw_type=indicator,
        currency=currency,
        gross=None,
        fee=None,
        net=net,
        psp_reference=bank_ref,
        merchant_reference=merchant_reference,
        payout_reference=payout_reference,
        occurred_at=occurred_at,
        source_line=excerpt(source),
    )
