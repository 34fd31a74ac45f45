"""A large file's lines staged by a second connection while the import's own inserts them, a slice at a time.

Once history is large, the import inserts a file's lines sorted by PSP reference (``importing._sorted_insert``),
from a staged copy of them. Staged on the import's own connection, the sort waits for the whole parse, and the
parse waits for nothing: one core parses, then one inserts. Here a thread on a connection of its own (Django's
connections are per thread; autocommit) runs the parse and ``COPY``s its chunks into ``reconciliation_staged_line``
(``UNLOGGED``, migration 0016), committing every ``STAGED_COMMIT_ROWS`` lines, while the import's connection, in
the import's one transaction, inserts into ``settlement_line`` what has landed (all of it since the last slice,
sorted by reference) and then waits for the next. Only the import's transaction writes ``settlement_line``; staged
rows are read by nothing else and deleted by the staging connection once the import is done with them, whether it
succeeded or not (``StagedLines.__exit__`` waits for that).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from queue import Empty, Queue
from typing import Generic, TypeVar

from django.db import connection

from reconciliation.importers import CopyChunk

logger = logging.getLogger(__name__)

T = TypeVar("T")
STAGED_TABLE = "reconciliation_staged_line"
#: Lines the staging connection commits at a time (each commit lets the import see them).
STAGED_COMMIT_ROWS = 100_000
#: Lines the import inserts at least in a slice (but the last): each slice is a pass over the reference index
#: (~0.4 s of backend CPU at ten nights of a million lines), so a million lines go in two or three slices; a slice
#: takes all that landed while the one before was inserted.
STAGED_SLICE_ROWS = 400_000

_CONNECTED, _END = object(), object()


class StagingUnavailable(Exception):
    """The second connection could not be had (the caller stages on its own connection instead)."""


class _Stopped(Exception):
    """The import stopped waiting for the staged lines (it failed): the staging stops too."""


class StagedLines(Generic[T]):
    """``produce(write)`` run in a thread on a second connection, each chunk it ``write``s ``COPY``d into
    ``STAGED_TABLE``; ``slices()`` the ordinals landed, as ``(after, up_to]`` ranges, for the import to insert.

    Use as a context manager: entering it raises ``StagingUnavailable`` when the thread has no connection; leaving
    it stops the staging if it still runs, and waits for the thread to delete the file's staged rows and close its
    connection. ``finished()`` lets that deletion start earlier, beside the import's last statements.
    """

    def __init__(self, file_id: int, columns: str, produce: Callable[[Callable[[CopyChunk], None]], T], *,
                 lines_about: int | None = None, commit_rows: int | None = None) -> None:
        self._file_id = file_id
        self._copy_statement = f"COPY {STAGED_TABLE} ({columns}) FROM STDIN"
        self._produce = produce
        self._commit_rows = commit_rows or STAGED_COMMIT_ROWS
        self._lines_about = lines_about  # the file's newlines, say: a hint for the slices, not a count
        self._landed: Queue = Queue()
        self._done = threading.Event()  # the import has read what it needs from the staged rows, or failed
        self._cursor = None
        self._copying = None  # the open COPY's context manager
        self._copy = None
        self._rows = self._announced = 0
        self._result: T | None = None
        self._thread = threading.Thread(target=self._run, name="settlement-import-staging", daemon=True)

    def __enter__(self) -> StagedLines[T]:
        self._thread.start()
        first = self._landed.get()
        if first is not _CONNECTED:
            self._thread.join()
            raise StagingUnavailable(repr(first)) from first
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def finished(self) -> None:
        """The import has inserted every slice: the staged rows can go."""
        self._done.set()

    def slices(self) -> Iterator[tuple[int, int]]:
        """The ordinals ``(after, up_to]`` landed since the last range, as soon as ``STAGED_SLICE_ROWS`` have (and
        as many are still to come, by ``lines_about``) or the file is all staged: each range all that landed while
        the caller inserted the one before. Re-raises what the staging raised."""
        after = up_to = 0
        ended = False
        while not ended:
            items = [self._landed.get()]
            while True:
                try:
                    items.append(self._landed.get_nowait())
                except Empty:
                    break
            for item in items:
                if isinstance(item, BaseException):
                    raise item
                if item is _END:
                    ended = True
                else:
                    up_to = max(up_to, item[1])
            if (ended and up_to > after) or (up_to - after >= STAGED_SLICE_ROWS and not self._rest_small(up_to)):
                yield after, up_to
                after = up_to

    def _rest_small(self, up_to: int) -> bool:
        """Whether the lines still to land look fewer than a slice: they then wait for the rest, as a small last
        slice would cost a pass of its own (a slice of 72k lines 0.8 s of backend CPU at ten nights)."""
        return self._lines_about is not None and self._lines_about - up_to < STAGED_SLICE_ROWS

    def result(self) -> T:
        """What ``produce`` returned (once ``slices()`` is exhausted)."""
        return self._result

    @property
    def rows(self) -> int:
        return self._rows

    def _write(self, chunk: CopyChunk) -> None:
        if self._done.is_set():
            raise _Stopped
        if self._copy is None:
            if self._cursor is None:
                self._cursor = connection.cursor()
            self._copying = self._cursor.cursor.copy(self._copy_statement)
            self._copy = self._copying.__enter__()
        self._copy.write(chunk.text)
        self._rows += chunk.rows
        if self._rows - self._announced >= self._commit_rows:
            self._commit()

    def _commit(self) -> None:
        """The open ``COPY`` ended (autocommit: its rows committed), and the ordinals it brought announced."""
        if self._copying is not None:
            copying, self._copying, self._copy = self._copying, None, None
            copying.__exit__(None, None, None)
        if self._rows > self._announced:
            self._landed.put((self._announced, self._rows))
            self._announced = self._rows

    def _run(self) -> None:
        try:
            connection.ensure_connection()  # this thread's own
        except Exception as exc:  # noqa: BLE001 - handed to the importing thread
            connection.close()
            self._landed.put(exc)
            return
        self._landed.put(_CONNECTED)
        try:
            self._result = self._produce(self._write)
            self._commit()
            self._landed.put(_END)
        except BaseException as exc:  # noqa: BLE001 - re-raised by ``slices()`` in the importing thread
            if self._copying is not None:  # the COPY aborted: its rows are not committed
                try:
                    self._copying.__exit__(type(exc), exc, exc.__traceback__)
                except Exception:  # noqa: BLE001, S110 - the connection may be gone; its rows with it
                    pass
            self._landed.put(exc)
        finally:
            self._done.wait()
            self._delete()

    def _delete(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {STAGED_TABLE} WHERE file_id = %s", [self._file_id])
        except Exception:  # file ids are never reused: rows left behind are garbage nothing reads
            logger.exception("event=settlement_import_staged_rows_left file_id=%s", self._file_id)
        finally:
            connection.close()
