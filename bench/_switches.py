"""Context switches of a bench stack's processes, per group, for ``bench/checkout.py``.

Voluntary switches are waits (a round trip to PostgreSQL, Redis or the PSP, a lock, the GIL, a pool's hand-off):
they count the work's shape and barely move with the machine's load. Involuntary ones are preemptions: they grow
with the number of busy processes on the cores, ours and the neighbours'. Summed over every thread
(``/proc/<pid>/task/*/status``) of each stack process group and of the live PostgreSQL backends of our database;
a thread that exits between two snapshots takes its count with it (the stack's threads and the pooled backends
live through a run).
"""
from __future__ import annotations

import os
import re

from _stack import Stack, _cmdline_has, _processes

_COUNTS = re.compile(rb"^(voluntary|nonvoluntary)_ctxt_switches:\s+(\d+)", re.M)
OUR_DB = "postgres: our db"


def _thread_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) switches of every thread of ``pid`` so far."""
    voluntary = involuntary = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                data = f.read()
        except OSError:
            continue
        for kind, count in _COUNTS.findall(data):
            if kind == b"voluntary":
                voluntary += int(count)
            else:
                involuntary += int(count)
    return voluntary, involuntary


def switch_snapshot(stack: Stack) -> dict[str, tuple[int, int]]:
    """(voluntary, involuntary) switches so far per stack process group (workers as one) and our backends."""
    groups = {proc.pid: name.partition("#")[0] for name, proc in stack.procs.items()}
    totals = {name: (0, 0) for name in groups.values()} | {OUR_DB: (0, 0)}
    our_db = f" {stack.db_name} ".encode()
    for pid, comm, pgrp, _own, _children in _processes():
        group = groups.get(pgrp) or (OUR_DB if comm == "postgres" and _cmdline_has(pid, our_db) else None)
        if group:
            voluntary, involuntary = _thread_switches(pid)
            totals[group] = (totals[group][0] + voluntary, totals[group][1] + involuntary)
    return totals


def format_switches(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], per: int,
                    unit: str) -> str:
    """One line: each group's voluntary / involuntary switches per ``unit`` between two snapshots."""
    per = max(per, 1)
    rows = []
    for name, (voluntary, involuntary) in sorted(after.items(), key=lambda kv: -kv[1][0]):
        v0, n0 = before.get(name, (0, 0))
        if voluntary - v0 or involuntary - n0:
            rows.append(f"{name} {(voluntary - v0) / per:.1f} / {(involuntary - n0) / per:.1f}")
    return f"  context switches per {unit}, voluntary / involuntary: " + (", ".join(rows) or "none")
