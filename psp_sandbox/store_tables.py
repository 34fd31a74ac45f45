"""The sandbox store's rows of webhook delivery (events and their attempts) and of Connect and disputes:
mixins of ``Store`` (psp_sandbox/store.py), which opens the connection and holds its lock."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any

from .encoding import dumps
from .store_schema import CONNECT_TABLES


class StoreRows:
    """The connection and the two readers every part of the store uses."""

    lock: threading.RLock
    _db: sqlite3.Connection

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self.lock:
            row = self._db.execute(sql, args).fetchone()
            return dict(row) if row else None


class EventTables(StoreRows):
    # -- events -------------------------------------------------------------
    def insert_event(
        self, event: dict[str, Any], status: str, next_attempt_at: float, payload: str | None = None
    ) -> None:
        """Store an event for delivery (``payload``: its JSON text, if the caller has it)."""
        with self.lock:
            self._db.execute(
                "INSERT INTO events(id, type, created, payload, status, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event["id"],
                    event["type"],
                    event["created"],
                    dumps(event) if payload is None else payload,
                    status,
                    next_attempt_at,
                ),
            )

    def due_events(self, now: float) -> list[dict[str, Any]]:
        """Pending events whose next attempt time has come, in creation order."""
        return self._all(
            "SELECT * FROM events WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY seq",
            (now,),
        )

    def update_event(self, event_id: str, **fields: Any) -> None:
        """Update delivery columns of an event."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.lock:
            self._db.execute(f"UPDATE events SET {sets} WHERE id = ?", (*fields.values(), event_id))

    def record_attempt(self, event_id: str, status_code: int | None, error: str | None, duplicate: bool) -> None:
        """Log one delivery attempt."""
        with self.lock:
            self._db.execute(
                "INSERT INTO webhook_attempts(event_id, at, status_code, error, duplicate) VALUES (?, ?, ?, ?, ?)",
                (event_id, time.time(), status_code, error, int(duplicate)),
            )

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """Return an event row or None."""
        return self._one("SELECT * FROM events WHERE id = ?", (event_id,))

    def list_events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Event rows with their attempts, oldest first."""
        with self.lock:
            if event_type:
                events = self._all("SELECT * FROM events WHERE type = ? ORDER BY seq", (event_type,))
            else:
                events = self._all("SELECT * FROM events ORDER BY seq")
            attempts = self._all("SELECT * FROM webhook_attempts ORDER BY seq")
        by_event: dict[str, list[dict[str, Any]]] = {}
        for a in attempts:
            by_event.setdefault(a["event_id"], []).append(
                {
                    "at": a["at"],
                    "status_code": a["status_code"],
                    "error": a["error"],
                    "duplicate": bool(a["duplicate"]),
                }
            )
        for e in events:
            e["attempts"] = by_event.get(e["id"], [])
        return events


class ConnectTables(StoreRows):
    # -- Connect (psp_sandbox/connect.py) -------------------------------------
    # Each table keeps the object as JSON in ``data`` beside the columns it is searched by.
    def connect_insert(self, table: str, obj: dict[str, Any], **columns: Any) -> None:
        """Insert a Connect object (``obj["id"]``) with its search columns."""
        assert table in CONNECT_TABLES
        cols = {"id": obj["id"], "created_at": time.time(), "data": dumps(obj), **columns}
        with self.lock:
            self._db.execute(
                f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", tuple(cols.values())
            )

    def connect_update(self, table: str, obj: dict[str, Any], **columns: Any) -> None:
        """Persist a changed Connect object and, if given, some of its columns."""
        assert table in CONNECT_TABLES
        cols = {"data": dumps(obj), **columns}
        with self.lock:
            self._db.execute(
                f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in cols)} WHERE id = ?", (*cols.values(), obj["id"])
            )

    def connect_get(self, table: str, obj_id: str) -> dict[str, Any] | None:
        """The row (its columns) with the object decoded as ``object``, or None."""
        assert table in CONNECT_TABLES
        row = self._one(f"SELECT * FROM {table} WHERE id = ?", (obj_id,))
        if row:
            row["object"] = json.loads(row.pop("data"))
        return row

    def connect_rows(self, table: str, where: dict[str, Any], newest_first: bool = True) -> list[dict[str, Any]]:
        """Rows whose columns equal ``where`` (names are the caller's, values bound), objects decoded."""
        assert table in CONNECT_TABLES and all(k.isidentifier() for k in where)
        clause = " AND ".join(f"{k} = ?" for k in where) or "1"
        rows = self._all(
            f"SELECT * FROM {table} WHERE {clause} ORDER BY seq {'DESC' if newest_first else 'ASC'}",
            tuple(where.values()),
        )
        for row in rows:
            row["object"] = json.loads(row.pop("data"))
        return rows

    def connect_balance(self, account: str, currency: str) -> int:
        """A connected account's balance: transfers less reversals, less payouts that did not fail."""
        with self.lock:
            transferred = self._db.execute(
                "SELECT COALESCE(SUM(amount - amount_reversed), 0) FROM transfers"
                " WHERE destination = ? AND currency = ?",
                (account, currency),
            ).fetchone()[0]
            paid_out = self._db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE account = ? AND currency = ?"
                " AND status NOT IN ('failed', 'canceled')",
                (account, currency),
            ).fetchone()[0]
        return int(transferred) - int(paid_out)

    def connect_due_disputes(self, now: float) -> list[dict[str, Any]]:
        """Scheduled disputes (``pm_card_createDispute``) whose time has come, oldest first."""
        return self._all(
            "SELECT id, payment_intent FROM disputes WHERE status = 'scheduled' AND opens_at <= ? ORDER BY seq", (now,)
        )

    def charge_disputed(self, charge_id: str) -> bool:
        """Whether a dispute was opened on the charge (Charge.disputed)."""
        return self._one("SELECT 1 AS x FROM disputes WHERE charge = ? AND status NOT IN ('scheduled', 'superseded')",
                         (charge_id,)) is not None

    def connect_due_payouts(self, now: float) -> list[dict[str, Any]]:
        """Ids of pending payouts whose completion time has come, oldest first."""
        return self._all(
            "SELECT id FROM payouts WHERE status = 'pending' AND complete_at <= ? ORDER BY seq", (now,)
        )
