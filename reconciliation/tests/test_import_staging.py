"""A large file's lines staged by a second connection and inserted a landed slice at a time (``services.staging``):
the same lines as a direct ``COPY``, nothing left behind by a failure on either side, the staged rows gone."""
from __future__ import annotations

import threading
import time
from itertools import islice

import pytest
from django.db import OperationalError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from reconciliation.exceptions import SettlementImportError
from reconciliation.importers import CopyChunk, FastPathUnavailable, ImportFormatError, stripe_arrow
from reconciliation.models import SettlementFile, SettlementLine
from reconciliation.services import importing, settlement_file_import, staging

from .test_fast_import import ODD_ROWS, plain_rows, report

pytestmark = pytest.mark.django_db
_FILE_FIELDS = ("line_count", "malformed_count", "counts_by_type", "statements", "settled_at", "fees",
                "unique_references", "twin_references")


@pytest.fixture
def path(tmp_path, monkeypatch):
    """A report of ~1,500 lines, odd rows among them, read in 4 KB blocks (about 50 chunks)."""
    monkeypatch.setattr(stripe_arrow, "BLOCK_BYTES", 4096)
    rows = plain_rows(1500)
    for position, odd in enumerate(ODD_ROWS):
        rows.insert(10 + position * 90, odd)
    return report(tmp_path / "night.csv", rows)


@pytest.fixture
def slices(monkeypatch, settings):
    """The staged path taken whatever the index's size, committing every 100 lines, slices of 300 lines or more;
    the slices inserted."""
    settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = -1
    monkeypatch.setattr(staging, "STAGED_COMMIT_ROWS", 100)
    monkeypatch.setattr(staging, "STAGED_SLICE_ROWS", 300)
    inserted: list[tuple[int, int]] = []
    original = staging.StagedLines.slices

    def recorded(self):
        for after_up_to in original(self):
            inserted.append(after_up_to)
            yield after_up_to

    monkeypatch.setattr(staging.StagedLines, "slices", recorded)
    return inserted


def _lines(settlement_file: SettlementFile) -> list[tuple]:
    fields = [f.attname for f in SettlementLine._meta.concrete_fields if f.attname not in ("id", "file_id")]
    return list(SettlementLine.objects.filter(file=settlement_file).order_by("ordinal").values_list(*fields))


def _file(settlement_file: SettlementFile) -> dict:
    return {name: getattr(settlement_file, name) for name in _FILE_FIELDS}


def _staged_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {staging.STAGED_TABLE}")
        return cursor.fetchone()[0]


def _nothing_left() -> None:
    assert not SettlementFile.objects.exists() and not SettlementLine.objects.exists()
    assert _staged_rows() == 0
    assert not [t for t in threading.enumerate() if t.name == "settlement-import-staging"]


def _directly(path, settings) -> tuple[list[tuple], dict]:
    """The lines and file sums a direct ``COPY`` stores (rolled back)."""
    above, settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES, None
    with transaction.atomic():
        imported = settlement_file_import(path=path, actor="test")
        expected = _lines(imported.file), _file(imported.file)
        transaction.set_rollback(True)
    settings.RECONCILIATION_IMPORT_SORTED_ABOVE_BYTES = above
    return expected


def test_staged_in_slices_stores_what_a_direct_copy_stores(path, slices, settings):
    expected = _directly(path, settings)
    imported = settlement_file_import(path=path, actor="test")
    assert (_lines(imported.file), _file(imported.file)) == expected
    assert len(expected[0]) > 1500 and expected[1]["malformed_count"] > 5
    assert len(slices) >= 3 and slices[0][0] == 0 and slices[-1][1] == len(expected[0])
    assert all(up_to - after >= 300 for after, up_to in slices[:-1])
    assert all(before[1] == after[0] for before, after in zip(slices, slices[1:], strict=False))
    lines = SettlementLine.objects.filter(file=imported.file)
    previous_ids: list[int] = [0]
    for after, up_to in slices:  # each slice's ids drawn in reference order, after the slice before's
        ids, references = zip(*lines.filter(ordinal__gt=after, ordinal__lte=up_to).order_by("id")
                              .values_list("id", "psp_reference"), strict=True)
        assert list(references) == sorted(references, key=str.encode) and min(ids) > max(previous_ids)
        previous_ids = ids
    assert _staged_rows() == 0
    assert settlement_file_import(path=path, actor="test").created is False  # idempotent as before


def test_a_parse_failing_part_way_leaves_nothing(path, slices, monkeypatch):
    real = importing.iter_copy_chunks

    def failing(*args, **kwargs):
        yield from islice((item for item in real(*args, **kwargs) if isinstance(item, CopyChunk)), 20)
        raise ImportFormatError("the file ends in the middle of a row")

    monkeypatch.setattr(importing, "iter_copy_chunks", failing)
    with pytest.raises(SettlementImportError, match="middle of a row"):
        settlement_file_import(path=path, actor="test")
    assert len(slices) >= 1  # some lines were inserted before the failure, and rolled back
    _nothing_left()


def test_an_insert_failing_part_way_leaves_nothing_and_no_staged_rows(path, slices, monkeypatch):
    original = staging.StagedLines.slices  # (the recording one)

    def failing(self):
        for n, after_up_to in enumerate(original(self)):
            if n == 1:
                raise RuntimeError("the server went away")
            yield after_up_to

    monkeypatch.setattr(staging.StagedLines, "slices", failing)
    with pytest.raises(RuntimeError, match="went away"):
        settlement_file_import(path=path, actor="test")
    _nothing_left()


def test_the_fast_path_given_up_part_way_stages_again_row_by_row(path, slices, settings, monkeypatch):
    expected = _directly(path, settings)
    real = importing.iter_copy_chunks

    def giving_up(*args, fast: bool = True, **kwargs):
        if not fast:
            yield from real(*args, fast=fast, **kwargs)
            return
        yield from islice((item for item in real(*args, fast=fast, **kwargs) if isinstance(item, CopyChunk)), 20)
        raise FastPathUnavailable("Arrow did not say which line is invalid")

    monkeypatch.setattr(importing, "iter_copy_chunks", giving_up)
    imported = settlement_file_import(path=path, actor="test")
    assert _lines(imported.file) == expected[0]  # the first attempt's staged and inserted lines are gone
    assert _staged_rows() == 0


def test_with_the_setting_off_the_import_stages_on_its_own(path, slices, settings):
    expected = _directly(path, settings)
    settings.RECONCILIATION_IMPORT_STAGED_ASIDE = False
    imported = settlement_file_import(path=path, actor="test")
    assert (_lines(imported.file), _file(imported.file)) == expected
    assert slices == [] and _staged_rows() == 0
    lines = SettlementLine.objects.filter(file=imported.file).order_by("id")
    assert list(lines.values_list("psp_reference", flat=True)) == sorted(  # one sorted INSERT
        lines.values_list("psp_reference", flat=True), key=str.encode)


def test_without_a_second_connection_the_import_stages_on_its_own(path, slices, settings, monkeypatch, caplog):
    expected = _directly(path, settings)
    ensure_connection = BaseDatabaseWrapper.ensure_connection

    def refused_to_the_staging_thread(self):
        if threading.current_thread().name == "settlement-import-staging":
            raise OperationalError("too many clients already")
        return ensure_connection(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refused_to_the_staging_thread)
    imported = settlement_file_import(path=path, actor="test")
    assert (_lines(imported.file), _file(imported.file)) == expected
    assert slices == [] and "settlement_import_staging_unavailable" in caplog.text
    assert _staged_rows() == 0


@pytest.mark.parametrize(("lines_about", "expected"), [(1000, [(0, 400), (400, 1000)]), (None, None)])
def test_a_slice_waits_for_the_rest_when_less_than_a_slice_would_follow(monkeypatch, lines_about, expected):
    # Lines landing 100 at a time: with the file's size known, the second slice waits for the last 200 lines
    # rather than leave them a pass of their own.
    monkeypatch.setattr(staging, "STAGED_SLICE_ROWS", 400)
    staged = staging.StagedLines(1, "", lambda write: None, lines_about=lines_about)

    def land() -> None:
        for up_to in range(100, 1001, 100):
            time.sleep(0.01)
            staged._landed.put((up_to - 100, up_to))
        staged._landed.put(staging._END)

    feeder = threading.Thread(target=land)
    feeder.start()
    got = list(staged.slices())
    feeder.join()
    assert got[0] == (0, 400) and got[-1][1] == 1000
    if expected is None:
        assert len(got) >= 2 and all(up_to - after >= 400 for after, up_to in got[:-1])
    else:
        assert got == expected


def test_a_failing_import_stops_the_staging_at_its_next_chunk(monkeypatch):
    monkeypatch.setattr(staging, "STAGED_COMMIT_ROWS", 1)
    monkeypatch.setattr(staging, "STAGED_SLICE_ROWS", 1)
    file_id, written = 10**9, []

    def produce(write) -> None:  # a long file: a line a chunk
        for ordinal in range(1, 200_001):
            write(CopyChunk(text=f"{file_id}\t{ordinal}\n", rows=1))
            written.append(ordinal)

    with pytest.raises(RuntimeError, match="insert failed"), \
            staging.StagedLines(file_id, "file_id, ordinal", produce) as staged:
        next(staged.slices())
        raise RuntimeError("the insert failed")
    assert len(written) < 200_000  # stopped, not parsed to the end
    _nothing_left()
