"""The sandbox's SQLite schema (``Store``, psp_sandbox/store.py, creates it on open).

``DATA_TABLES`` are emptied by a reset; ``CONNECT_TABLES`` keep an object as JSON beside its search columns.
"""

from __future__ import annotations

# Columns added after the first release: (table, column, type), added to older database files.
ADDED_COLUMNS = (("payment_intents", "created_at", "REAL"), ("payment_intents", "extra", "TEXT"),
                 ("payouts", "failed_at", "REAL"),  # when a payout failed: the connected payouts report's day
                 ("refunds", "failed_at", "REAL"))  # when a succeeded refund failed: its refund_failure row's day

SCHEMA = """
CREATE TABLE IF NOT EXISTS config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_intents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    api_key TEXT NOT NULL,
    idempotency_key TEXT,
    payment_order_id TEXT,
    status TEXT NOT NULL,
    complete_at REAL,
    planned_outcome TEXT,
    created INTEGER NOT NULL,
    created_at REAL,
    extra TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pi_poid ON payment_intents(payment_order_id);
CREATE INDEX IF NOT EXISTS pi_processing ON payment_intents(status, complete_at);
CREATE TABLE IF NOT EXISTS charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    payment_intent TEXT NOT NULL,
    idempotency_key TEXT,
    payment_order_id TEXT,
    amount INTEGER NOT NULL,
    amount_refunded INTEGER NOT NULL DEFAULT 0,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    payment_method TEXT,
    created INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ch_pi ON charges(payment_intent);
CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    payment_intent TEXT NOT NULL,
    charge TEXT NOT NULL,
    idempotency_key TEXT,
    payment_order_id TEXT,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    created INTEGER NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rf_pi ON refunds(payment_intent);
CREATE TABLE IF NOT EXISTS payment_methods (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    card TEXT NOT NULL,
    customer TEXT,
    consumed_by TEXT,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    created_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    api_key TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    status_code INTEGER,
    body TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (api_key, key)
);
CREATE TABLE IF NOT EXISTS flaky_attempts (
    api_key TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (api_key, key)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL
);
-- The webhook dispatcher polls for due events every 50 ms: without this, a full scan under the store's lock.
CREATE INDEX IF NOT EXISTS ev_due ON events(status, next_attempt_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    duplicate INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wa_event ON webhook_attempts(event_id);
-- Connect (psp_sandbox/connect.py): connected accounts, their bank accounts, transfers, payouts, endpoints.
CREATE TABLE IF NOT EXISTS connect_accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bank_accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, account TEXT NOT NULL, currency TEXT NOT NULL,
    bank TEXT NOT NULL, created_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ba_account ON bank_accounts(account);
CREATE TABLE IF NOT EXISTS transfers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, destination TEXT NOT NULL, transfer_group TEXT,
    currency TEXT NOT NULL, amount INTEGER NOT NULL, amount_reversed INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tr_destination ON transfers(destination, currency);
CREATE INDEX IF NOT EXISTS tr_group ON transfers(transfer_group);
CREATE TABLE IF NOT EXISTS payouts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, account TEXT NOT NULL, destination TEXT NOT NULL,
    currency TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, complete_at REAL, planned_outcome TEXT,
    created_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS po_account ON payouts(account, currency);
CREATE INDEX IF NOT EXISTS po_destination ON payouts(destination);
CREATE INDEX IF NOT EXISTS po_due ON payouts(status, complete_at);
-- Disputes (psp_sandbox/disputes.py): status is the dispute's, or scheduled (pm_card_createDispute) / superseded.
CREATE TABLE IF NOT EXISTS disputes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, charge TEXT NOT NULL, payment_intent TEXT,
    status TEXT NOT NULL, opens_at REAL, created_at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dp_charge ON disputes(charge);
CREATE INDEX IF NOT EXISTS dp_due ON disputes(status, opens_at);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, connect INTEGER NOT NULL, created_at REAL NOT NULL,
    data TEXT NOT NULL
);
"""

DATA_TABLES = (
    "payment_intents",
    "payment_methods",
    "customers",
    "charges",
    "refunds",
    "idempotency",
    "flaky_attempts",
    "events",
    "webhook_attempts",
    *("connect_accounts", "bank_accounts", "transfers", "payouts", "webhook_endpoints"),  # connect.py
    "disputes",  # disputes.py
)
# Tables read and written by the ``connect_*`` helpers of store_tables.py.
CONNECT_TABLES = frozenset(("connect_accounts", "bank_accounts", "transfers", "payouts", "webhook_endpoints",
                             "disputes"))
