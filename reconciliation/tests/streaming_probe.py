"""A parser's memory over a whole file, measured in a process of its own (``test_importers.py``'s flat-memory tests):

    python -m reconciliation.tests.streaming_probe SMALL BIG

The process first parses ``SMALL`` (a few lines of the same format: the parser's modules, Arrow's or the XML
parser's buffers and the allocator's arenas are then in place), reads its peak resident set (``VmHWM``), parses
``BIG`` through ``iter_records`` and prints one JSON line: the records, their net total and how far the peak
resident set grew. The resident set counts what the parser holds in C (Arrow's blocks, an XML tree) as well as its
Python objects, and nothing slows the parse down to count it (``tracemalloc`` made it ~8x slower).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from reconciliation.importers import SettlementRecord, iter_records


def peak_resident_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    small, big = Path(sys.argv[1]), Path(sys.argv[2])
    for _ in iter_records(small):
        pass
    before = peak_resident_kb()
    records = net = 0
    for item in iter_records(big):
        if isinstance(item, SettlementRecord):
            records += 1
            net += item.net
    print(json.dumps({"records": records, "net": net, "peak_growth_kb": peak_resident_kb() - before}))


if __name__ == "__main__":
    main()
