"""SQLite persistence for the sandbox.

One connection shared by all threads, guarded by a single re-entrant lock
(``Store.lock``).  Callers that need several statements to be atomic (the
idempotency check + execution) hold ``store.lock`` around them; every public
method takes the lock itself as well, so single calls are always safe.

The schema is in ``store_schema.py``; the rows of webhook delivery, Connect and disputes in
``store_tables.py`` (mixins of ``Store``).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .encoding import dumps
from .store_schema import ADDED_COLUMNS, DATA_TABLES, SCHEMA
from .store_tables import ConnectTables, EventTables

_ALPHABET = string.ascii_letters + string.digits
# Random bytes to id characters in one ``translate``: byte b < 248 (4 x 62) is _ALPHABET[b % 62], each
# character equally likely; bytes 248-255 are dropped (and more drawn when fewer than 24 are left).
_TO_ALPHABET = bytes(ord(_ALPHABET[b % 62]) if b < 248 else 0 for b in range(256))
_DROPPED = bytes(range(248, 256))


# Id characters drawn ahead (one getrandom per ~170 ids, not one per id), taken under a lock; a forked
# child starts without them (it would hand out its parent's next ids).
_chars = bytearray()
_chars_lock = threading.Lock()
os.register_at_fork(after_in_child=_chars.clear)


def new_id(prefix: str) -> str:
    """Return a Stripe-looking id such as ``pi_3xY...`` (24 random chars)."""
    with _chars_lock:
        while len(_chars) < 24:
            _chars.extend(secrets.token_bytes(4096).translate(_TO_ALPHABET, _DROPPED))
        chars = _chars[:24].decode("ascii")
        del _chars[:24]
    return prefix + "_" + chars


class Store(EventTables, ConnectTables):
    """Thread-safe access to the sandbox's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        # Idempotency keys whose request is executing: (api_key, key) -> (fingerprint, claimed at).
        self._claims: dict[tuple[str, str], tuple[str, float]] = {}
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self.lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # A test double's storage: no fsync at WAL checkpoints. A commit survives the process, killed or not
            # (it is in the OS's cache); a machine crash can lose or corrupt the file (NORMAL lost the last
            # commits there). ``make demo`` starts from a new file anyway.
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(SCHEMA)
            self._add_columns()
            # Claims left by a crashed process can never complete.
            self._db.execute("DELETE FROM idempotency WHERE state = 'in_progress'")

    def _add_columns(self) -> None:
        for table, column, kind in ADDED_COLUMNS:
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the body in one SQLite transaction."""
        with self.lock:
            if self._db.in_transaction:  # nested: join the outer transaction
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- config -------------------------------------------------------------
    def load_config(self) -> dict[str, Any]:
        """Return the persisted config overrides."""
        return {r["key"]: json.loads(r["value"]) for r in self._all("SELECT * FROM config")}

    def save_config(self, values: dict[str, Any]) -> None:
        """Upsert config overrides."""
        with self.transaction() as db:
            for key, value in values.items():
                db.execute(
                    "INSERT INTO config(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, dumps(value)),
                )

    def reset(self) -> None:
        """Delete all data and config."""
        with self.transaction() as db:
            for table in (*DATA_TABLES, "config"):
                db.execute(f"DELETE FROM {table}")
            self._claims.clear()

    # -- idempotency --------------------------------------------------------
    # A claim (the request is executing) is kept in memory, under the lock: it dies with the process, as
    # the rows 'in_progress' older versions wrote (deleted at start) did. The row is written once, 'done',
    # in the transaction that executes the request: one write transaction per POST, not two.
    def get_idempotency(self, api_key: str, key: str, ttl_s: float | None = None) -> dict[str, Any] | None:
        """Return the idempotency record for (api_key, key); one older than ``ttl_s`` is forgotten."""
        with self.lock:
            claim = self._claims.get((api_key, key))
            if claim is not None:
                return {"api_key": api_key, "key": key, "fingerprint": claim[0], "state": "in_progress",
                        "status_code": None, "body": None, "created": claim[1]}
            row = self._one("SELECT * FROM idempotency WHERE api_key = ? AND key = ?", (api_key, key))
            if row is None or ttl_s is None or row["state"] != "done" or row["created"] >= time.time() - ttl_s:
                return row
            self._db.execute(
                "DELETE FROM idempotency WHERE api_key = ? AND key = ? AND state = 'done' AND created < ?",
                (api_key, key, time.time() - ttl_s),
            )
            return self._one("SELECT * FROM idempotency WHERE api_key = ? AND key = ?", (api_key, key))

    def claim_idempotency(self, api_key: str, key: str, fingerprint: str) -> None:
        """Mark (api_key, key) as executing."""
        with self.lock:
            self._claims[(api_key, key)] = (fingerprint, time.time())

    def release_idempotency(self, api_key: str, key: str) -> None:
        """Forget a claim (nothing was executed, so nothing is replayed)."""
        with self.lock:
            self._claims.pop((api_key, key), None)

    def complete_idempotency(self, api_key: str, key: str, status: int, body: str) -> None:
        """Store the response to replay for (api_key, key) (nothing if its claim was reset meanwhile)."""
        with self.lock:
            claim = self._claims.get((api_key, key))
            if claim is None:
                return
            self._db.execute(
                "INSERT INTO idempotency(api_key, key, fingerprint, state, status_code, body, created)"
                " VALUES (?, ?, ?, 'done', ?, ?, ?)",
                (api_key, key, claim[0], status, body, claim[1]),
            )
            del self._claims[(api_key, key)]

    def bump_flaky(self, api_key: str, key: str) -> int:
        """Count one more attempt for (api_key, key); return the new count."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO flaky_attempts(api_key, key, count) VALUES (?, ?, 1) "
                "ON CONFLICT(api_key, key) DO UPDATE SET count = count + 1",
                (api_key, key),
            )
            row = db.execute(
                "SELECT count FROM flaky_attempts WHERE api_key = ? AND key = ?",
                (api_key, key),
            ).fetchone()
            return int(row["count"])

    # -- payment intents ----------------------------------------------------
    def insert_payment_intent(
        self,
        pi: dict[str, Any],
        api_key: str,
        idempotency_key: str | None,
        complete_at: float | None = None,
        planned_outcome: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Insert a payment_intent object (``extra``: sandbox-only facts, never rendered)."""
        with self.lock:
            self._db.execute(
                "INSERT INTO payment_intents(id, api_key, idempotency_key, payment_order_id, status,"
                " complete_at, planned_outcome, created, created_at, extra, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pi["id"],
                    api_key,
                    idempotency_key,
                    pi["metadata"].get("payment_order_id"),
                    pi["status"],
                    complete_at,
                    planned_outcome,
                    pi["created"],
                    time.time(),
                    dumps(extra or {}),
                    dumps(pi),
                ),
            )

    def update_payment_intent(self, pi: dict[str, Any]) -> None:
        """Persist a changed payment_intent object (clears any pending completion)."""
        with self.lock:
            self._db.execute(
                "UPDATE payment_intents SET status = ?, data = ?,"
                " complete_at = CASE WHEN ? = 'processing' THEN complete_at END WHERE id = ?",
                (pi["status"], dumps(pi), pi["status"], pi["id"]),
            )

    def get_payment_intent(self, pi_id: str) -> dict[str, Any] | None:
        """Return the payment_intent object or None."""
        row = self._one("SELECT data FROM payment_intents WHERE id = ?", (pi_id,))
        return json.loads(row["data"]) if row else None

    def get_payment_intent_row(self, pi_id: str) -> dict[str, Any] | None:
        """Return the raw row (with api_key, idempotency_key, planned_outcome)."""
        return self._one("SELECT * FROM payment_intents WHERE id = ?", (pi_id,))

    def pi_extra(self, pi_id: str) -> dict[str, Any]:
        """The sandbox-only facts stored with a payment intent."""
        row = self._one("SELECT extra FROM payment_intents WHERE id = ?", (pi_id,))
        return json.loads(row["extra"] or "{}") if row else {}

    def search_payment_intents(
        self, api_key: str, meta_key: str, value: str, lag_s: float = 0.0
    ) -> list[dict[str, Any]]:
        """Payment intents whose metadata[meta_key] == value, created at least ``lag_s`` ago, newest first."""
        rows = self._all(
            "SELECT data FROM payment_intents WHERE api_key = ? "
            "AND json_extract(data, '$.metadata.' || json_quote(?)) = ? "
            "AND COALESCE(created_at, created) <= ? ORDER BY seq DESC",
            (api_key, meta_key, value, time.time() - lag_s),
        )
        return [json.loads(r["data"]) for r in rows]

    def due_processing(self, now: float) -> list[dict[str, Any]]:
        """Rows of processing payment intents whose completion time has come."""
        return self._all(
            "SELECT * FROM payment_intents WHERE status = 'processing' AND complete_at <= ? ORDER BY seq",
            (now,),
        )

    # -- charges and refunds ------------------------------------------------
    def insert_charge(self, charge: dict[str, Any]) -> None:
        """Record a charge (columns as in the charges table)."""
        cols = (
            "id",
            "payment_intent",
            "idempotency_key",
            "payment_order_id",
            "amount",
            "amount_refunded",
            "currency",
            "status",
            "failure_code",
            "payment_method",
            "created",
            "created_at",
        )
        with self.lock:
            self._db.execute(
                f"INSERT INTO charges({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                tuple(charge.get(c) for c in cols),
            )

    def update_charge(self, charge_id: str, **fields: Any) -> None:
        """Update some columns of a charge."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.lock:
            self._db.execute(f"UPDATE charges SET {sets} WHERE id = ?", (*fields.values(), charge_id))

    def get_charge(self, charge_id: str) -> dict[str, Any] | None:
        """Return a charge row or None."""
        return self._one("SELECT * FROM charges WHERE id = ?", (charge_id,))

    def list_charges(self) -> list[dict[str, Any]]:
        """All charge rows, oldest first."""
        return self._all("SELECT * FROM charges ORDER BY seq")

    def insert_refund(
        self,
        refund: dict[str, Any],
        charge_id: str,
        idempotency_key: str | None,
        payment_order_id: str | None,
    ) -> None:
        """Record a refund object."""
        with self.lock:
            self._db.execute(
                "INSERT INTO refunds(id, payment_intent, charge, idempotency_key, payment_order_id,"
                " amount, currency, status, created, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    refund["id"],
                    refund["payment_intent"],
                    charge_id,
                    idempotency_key,
                    payment_order_id,
                    refund["amount"],
                    refund["currency"],
                    refund["status"],
                    refund["created"],
                    time.time(),
                    dumps(refund),
                ),
            )

    def update_refund(self, refund: dict[str, Any], failed_at: float | None = None) -> None:
        """Persist a changed refund object (its status; ``failed_at``: when a succeeded one failed)."""
        with self.lock:
            self._db.execute(
                "UPDATE refunds SET status = ?, data = ?, failed_at = COALESCE(?, failed_at) WHERE id = ?",
                (refund["status"], dumps(refund), failed_at, refund["id"]),
            )

    def due_pending_refunds(self, created_before: float) -> list[dict[str, Any]]:
        """Rows of pending refunds created before ``created_before`` (only refundFail's are pending)."""
        return self._all(
            "SELECT id, payment_intent FROM refunds WHERE status = 'pending' AND created_at <= ? ORDER BY seq",
            (created_before,),
        )

    def get_refund(self, refund_id: str) -> dict[str, Any] | None:
        """Return a refund object or None."""
        row = self._one("SELECT data FROM refunds WHERE id = ?", (refund_id,))
        return json.loads(row["data"]) if row else None

    def refunds_of(self, payment_intent: str | None, charge: str | None) -> list[dict[str, Any]]:
        """Refund objects of a payment intent and/or charge (all when both are None), newest first."""
        rows = self._all(
            "SELECT data FROM refunds WHERE (? IS NULL OR payment_intent = ?) AND (? IS NULL OR charge = ?)"
            " ORDER BY seq DESC",
            (payment_intent, payment_intent, charge, charge),
        )
        return [json.loads(r["data"]) for r in rows]

    def list_refunds(self) -> list[dict[str, Any]]:
        """All refund rows (without the JSON blob), oldest first."""
        rows = self._all("SELECT * FROM refunds ORDER BY seq")
        for r in rows:
            r.pop("data", None)
        return rows

    # -- payment methods and customers --------------------------------------
    def insert_payment_method(self, pm: dict[str, Any], card: str, consumed_by: str | None = None) -> None:
        """Store a PaymentMethod object with the name of the test card it behaves as."""
        with self.lock:
            self._db.execute(
                "INSERT INTO payment_methods(id, card, customer, consumed_by, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (pm["id"], card, pm.get("customer"), consumed_by, time.time(), dumps(pm)),
            )

    def get_payment_method(self, pm_id: str) -> dict[str, Any] | None:
        """The row (id, card, customer, consumed_by) with the object decoded as ``object``."""
        row = self._one("SELECT * FROM payment_methods WHERE id = ?", (pm_id,))
        if row:
            row["object"] = json.loads(row.pop("data"))
        return row

    def update_payment_method(self, pm: dict[str, Any], consumed_by: str | None = None) -> None:
        """Persist a changed PaymentMethod (its customer) and, if given, what consumed it."""
        with self.lock:
            self._db.execute(
                "UPDATE payment_methods SET customer = ?, consumed_by = COALESCE(?, consumed_by), data = ?"
                " WHERE id = ?",
                (pm.get("customer"), consumed_by, dumps(pm), pm["id"]),
            )

    def insert_customer(self, customer: dict[str, Any]) -> None:
        """Store a Customer object."""
        with self.lock:
            self._db.execute(
                "INSERT INTO customers(id, created_at, data) VALUES (?, ?, ?)",
                (customer["id"], time.time(), dumps(customer)),
            )

    def customer_exists(self, customer_id: str) -> bool:
        """Whether the customer exists (its object left undecoded)."""
        return self._one("SELECT 1 AS x FROM customers WHERE id = ?", (customer_id,)) is not None

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """A Customer object or None."""
        row = self._one("SELECT data FROM customers WHERE id = ?", (customer_id,))
        return json.loads(row["data"]) if row else None
