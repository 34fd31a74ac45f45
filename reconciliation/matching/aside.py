"""Reads a run sends to a second database connection, so that they use a second core beside its own statements.

A run's statements go one after another on its connection, in its transaction. A read that needs nothing the run
has written, only what was committed before the run began (the lines of its files and of the files reconciled
before it, the orders, earlier runs' match rows), can instead run in a thread on a connection of its own (Django's
connections are per thread), in a read-only transaction, and hand its rows back to the client, while the run's
connection goes on. The run's writes (match rows, breaks, postings) stay in the run's own transaction.

That connection sees what is committed when its statement starts, not the run's uncommitted rows: each caller says
why what it reads is the same there as on the run's connection. Inside an outer transaction (a test's, a caller's
``atomic``) the committed state is not what the run sees, so there the read runs on the run's own connection, when
its result is asked for, as it would without a second connection (``RunScope.reads_aside`` off).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: The second connection's transaction: a read (no write can slip in), tuned as the run's own
#: (``scope.session_prepare``); transaction-local, so nothing is left on a connection a pool hands out again.
_TRANSACTION = ("SET TRANSACTION READ ONLY", "SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off",
                "SET LOCAL parallel_tuple_cost = 0.01")


class Aside(Generic[T]):
    """``read(cursor)`` on a second connection, started now (``enabled``), or on the run's cursor when asked for.

    Use as a context manager: leaving it waits for the thread (and closes its connection), whatever happened.
    """

    def __init__(self, read: Callable[[CursorWrapper], T], *, enabled: bool) -> None:
        self._read = read
        self._value: T | None = None
        self._error: BaseException | None = None
        self._reading = False  # the second connection was had (a pool may have none to give)
        self._thread = threading.Thread(target=self._run, name="reconciliation-aside", daemon=True) if enabled else None

    @property
    def enabled(self) -> bool:
        """Whether ``read`` runs on a second connection."""
        return self._thread is not None

    def __enter__(self) -> Aside[T]:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:  # this thread's own connection
                for statement in _TRANSACTION:
                    cursor.execute(statement)
                self._reading = True
                self._value = self._read(cursor)
        except BaseException as error:  # noqa: BLE001 (handed to the run's thread by ``result``, raised there)
            self._error = error
        finally:
            connection.close()

    def result(self, cursor: CursorWrapper) -> T:
        """What ``read`` returned: waits for the thread, or reads now on ``cursor`` (the run's) when not enabled, or
        when the thread could not have its connection (then logged): the run goes on as it would on one."""
        if self._thread is None:
            return self._read(cursor)
        self._thread.join()
        if self._error is not None and not self._reading:
            logger.warning("event=reconciliation_aside_unavailable error=%r", self._error)
            return self._read(cursor)
        if self._error is not None:
            raise self._error
        return self._value
