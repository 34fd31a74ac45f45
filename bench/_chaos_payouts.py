"""Money out during ``bench/chaos.py --payouts``: sellers' payout accounts, payout runs repeated and concurrent
during the chaos, banks sending paid payouts back, and the figures that hold our books against the sandbox's.

Not run directly. Every seller gets a payout account: most pay to ``btok_us_verified``, every tenth from the
fourth to ``btok_us_verified_accountClosed`` (its first payout fails; the account is then unusable, later runs
report ``payout_account_unusable``), every tenth from the eighth to ``btok_us_verified_insufficientFunds``
(every payout fails, the money comes back each time). Every ``RETURN_EVERY``-th paid payout (by its id) is
sent back by the bank (``POST /_sandbox/payouts/{id}/return``), during the chaos and after.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import date, timedelta

import httpx
from _stack import ROOT

RETURN_EVERY = 7


def bank_token(i: int) -> str:
    return {3: "btok_us_verified_accountClosed", 7: "btok_us_verified_insufficientFunds"}.get(
        i % 10, "btok_us_verified")


def payout_accounts(stack, sellers: list[str], auth: dict[str, str]) -> None:
    """A payout account for every seller, and the Connect webhook endpoint at the PSP (its secret is the
    stack's ``PSP_CONNECT_WEBHOOK_SECRET``: ``PSP_SANDBOX_CONNECT_WEBHOOK_SECRET``)."""
    for i, seller in enumerate(sellers):
        httpx.post(f"{stack.web_url}/api/v1/sellers/{seller}/payout-account", headers={
            **auth, "Idempotency-Key": f"pa-{seller}"}, json={"external_account": bank_token(i), "country": "US"},
            timeout=30).raise_for_status()
    httpx.post(f"{stack.psp_url}/v1/webhook_endpoints", headers={"Authorization": f"Bearer {stack.env['PSP_API_KEY']}"},
               data={"url": f"{stack.web_url}/webhooks/psp/connect", "enabled_events[]": "*", "connect": "true"},
               timeout=30).raise_for_status()


# One Django process per round (a process start costs seconds of CPU on a small machine): the runs of the
# round in threads of their own, at once.
_ROUND = """
import sys, threading
from datetime import date
from django.db import connection
from payouts.services import payouts_run
failed = []
def run(day):
    try:
        payouts_run(payout_date=date.fromisoformat(day), actor="command:chaos", reason="chaos")
    except Exception as exc:
        failed.append(repr(exc))
    finally:
        connection.close()
threads = [threading.Thread(target=run, args=(day,)) for day in sys.argv[-1].split(",")]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(failed), *failed[:3])
"""


class Payer(threading.Thread):
    """Payout runs during the chaos, each round a new (future) date run twice at once, and every third round
    the previous date once more: a date paid out already makes no second payout."""

    def __init__(self, stack, stop: threading.Event, every: float, log) -> None:
        super().__init__(name="chaos-payer", daemon=True)
        self.stack, self.stop, self.every, self.log = stack, stop, every, log
        self.rounds, self.runs, self.failed_runs, self.day = 0, 0, 0, date.today()

    def one_round(self) -> None:
        self.rounds += 1
        self.day += timedelta(days=1)
        days = [self.day, self.day] + ([self.day - timedelta(days=1)] if self.rounds % 3 == 0 else [])
        out = subprocess.run([sys.executable, "-c", "import django, os; django.setup(); exec(os.environ['ROUND'])",
                              ",".join(d.isoformat() for d in days)], cwd=ROOT, env={**self.stack.env, "ROUND": _ROUND},
                             capture_output=True, text=True)
        failed = int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else len(days)
        self.runs += len(days)
        self.failed_runs += failed
        if failed:
            self.log(f"payout runs failed: {(out.stdout + out.stderr)[-500:]}")

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.one_round()


def bank_returns(psp: httpx.Client, returned: set[str], log) -> None:
    """The banks send back every RETURN_EVERY-th paid payout (by its id), once."""
    try:
        for psp_id, _, _, _, status in psp.get("/_sandbox/payouts").json()["payouts"]:
            if status == "paid" and psp_id not in returned and sum(psp_id.encode()) % RETURN_EVERY == 0:
                psp.post(f"/_sandbox/payouts/{psp_id}/return", json={"failure_code": "account_closed"})
                returned.add(psp_id)
    except (httpx.HTTPError, ValueError, KeyError) as exc:  # the next round sends them back
        log(f"bank returns: {exc!r}")


_OURS = """SELECT id, seller_id, psp_account_id, psp_payout_id, psp_transfer_id, amount, state, failure_code,
                  transfer_reversed_at IS NOT NULL, returned_at IS NOT NULL FROM payouts_payout"""
_UNFINISHED = """SELECT count(*) FROM payouts_payout WHERE state IN ('pending', 'in_transit')
                 OR (state = 'failed' AND psp_transfer_id <> '' AND transfer_reversed_at IS NULL)"""


def _state_mismatch(ours: list[tuple], theirs: dict) -> int:
    """Our payouts whose state is not the PSP's payout's (paid / failed), or that the PSP shows none for while
    we say it was paid."""
    psp_status = {psp_id: status for psp_id, _, _, _, status in theirs["payouts"]}
    mismatch = 0
    for row in ours:
        state, psp_payout_id = row[6], row[3]
        if state in ("paid", "failed") and psp_payout_id and psp_status.get(psp_payout_id) != state:
            mismatch += 1
        elif state == "paid" and not psp_payout_id:
            mismatch += 1
    return mismatch


def payouts_converge(conn, psp: httpx.Client, timeout: float, log) -> dict:
    """Wait until no payout of ours is unfinished, the PSP has none pending and every state is the PSP's (banks
    sending back what they will on the way); then the figures."""
    deadline, returned = time.perf_counter() + timeout, set()
    while True:
        bank_returns(psp, returned, log)
        theirs = psp.get("/_sandbox/payouts").json()
        ours = conn.execute(_OURS).fetchall()
        pending_psp = sum(1 for p in theirs["payouts"] if p[4] == "pending")
        unfinished = conn.execute(_UNFINISHED).fetchone()[0]
        mismatch = _state_mismatch(ours, theirs)
        if (not unfinished and not pending_psp and not mismatch) or time.perf_counter() > deadline:
            break
        time.sleep(1.0)
    return payout_figures(conn, ours, theirs, mismatch)


def _doubles(ours: list[tuple], theirs: dict) -> dict[str, int]:
    """The PSP's transfers and payouts per our payout (its idempotency keys derive from the payout id): more
    than one transfer, or more than one payout not failed, is a seller paid twice; per seller (connected
    account), what the PSP paid out against what we booked paid."""
    transfers = Counter(group for _, group, _, _, _ in theirs["transfers"])
    live_payouts = Counter(pid for _, pid, _, _, status in theirs["payouts"] if status != "failed")
    ours_ids = {row[0] for row in ours}
    psp_paid, our_paid = defaultdict(int), defaultdict(int)
    for _, _, account, amount, status in theirs["payouts"]:
        psp_paid[account] += amount if status == "paid" else 0
    for row in ours:
        our_paid[row[2]] += row[5] if row[6] == "paid" else 0
    return {
        "double_transfers": sum(1 for n in transfers.values() if n > 1),
        "double_psp_payouts": sum(1 for n in live_payouts.values() if n > 1),
        "psp_objects_not_ours": sum(1 for g in transfers if g not in ours_ids)
        + sum(1 for _, pid, _, _, _ in theirs["payouts"] if pid not in ours_ids),
        "sellers_paid_differently": sum(1 for a in set(psp_paid) | set(our_paid) if psp_paid[a] != our_paid[a]),
    }


def payout_figures(conn, ours: list[tuple], theirs: dict, mismatch: int) -> dict:
    doubles = _doubles(ours, theirs)
    states = Counter(row[6] for row in ours)
    lost = [f"{row[0]}:{row[6]}:{row[7]}" for row in ours if row[6] not in ("paid", "failed")]
    our_paid = sum(row[5] for row in ours if row[6] == "paid")
    net_transferred = sum(amount - reversed_ for _, _, _, amount, reversed_ in theirs["transfers"])
    outcomes = dict(conn.execute("SELECT outcome, count(*) FROM payouts_payoutrunitem GROUP BY 1").fetchall())
    return {
        "payouts_ours": len(ours), "payouts_psp": len(theirs["payouts"]), "payouts_states": dict(states),
        "payouts_failure_codes": dict(Counter(row[7] for row in ours if row[6] == "failed")),
        "payouts_bank_returned": sum(1 for row in ours if row[9]),
        "payout_runs_outcomes": outcomes,
        "payout_accounts_unusable": conn.execute(
            "SELECT count(*) FROM payouts_payoutaccount WHERE unusable_at IS NOT NULL").fetchone()[0],
        "double_payouts": doubles["double_transfers"] + doubles["double_psp_payouts"]
        + doubles["sellers_paid_differently"], **doubles,
        "payouts_lost": len(lost), "payouts_lost_detail": lost[:10], "payouts_state_mismatch": mismatch,
        "psp_paid_out": theirs["paid"].get("usd", 0), "our_paid_total": our_paid,
        "psp_net_transferred": net_transferred,
    }
