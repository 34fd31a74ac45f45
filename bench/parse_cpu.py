"""CPU of reading a settlement report into COPY rows: the row parser against the Arrow path, same file.

    .venv/bin/python bench/parse_cpu.py --format adyen --lines 200000 [--breaks-pct 1] [--repeat 3]

Writes the bench's report (``_reconcile_files``: a night's charges, 1% of them made differences, the payout),
then reads it with ``importers.iter_copy_chunks`` row by row (``fast=False``) and through Arrow, each in a fresh
process, and prints the CPU seconds (``time.process_time``, the median of ``--repeat``), microseconds a line,
the ratio, and each process's peak RSS. No database: parsing only (``bench/reconcile.py`` measures the import).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM"))


def _read(path: Path, fmt: str, fast: bool) -> dict:
    from reconciliation.importers import iter_copy_chunks

    if fast:  # the Arrow modules loaded before the clock starts, as in a worker that imported a file before
        import reconciliation.importers.adyen_arrow  # noqa: F401
        import reconciliation.importers.stripe_arrow  # noqa: F401
    started = time.process_time()
    rows = sum(getattr(item, "rows", 0) for item in iter_copy_chunks(path, fmt, 1, fast=fast))
    return {"cpu": time.process_time() - started, "rows": rows, "rss": _peak_rss_mb()}


def _write(workdir: Path, fmt: str, lines: int, breaks_pct: float) -> Path:
    from _reconcile_files import night_files, write_adyen_night, write_night

    from psp_sandbox.settlement import COLUMNS, camt053, major

    every = round(100 / breaks_pct) if breaks_pct > 0 else 0
    writer = write_adyen_night if fmt == "adyen" else write_night
    writer(workdir, 0, lines, every, COLUMNS, camt053, major)
    return night_files(workdir, 0)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=("stripe", "adyen"), default="adyen")
    parser.add_argument("--lines", type=int, default=200000)
    parser.add_argument("--breaks-pct", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # path, "fast" or "rows"
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_read(Path(args.child[0]), args.format, args.child[1] == "fast")))
        return
    with tempfile.TemporaryDirectory(prefix="parse_cpu_") as workdir:
        path = _write(Path(workdir), args.format, args.lines, args.breaks_pct)
        results = {}
        for mode in ("rows", "fast"):
            runs = [json.loads(subprocess.run(
                [sys.executable, __file__, "--format", args.format, "--child", str(path), mode],
                check=True, capture_output=True, text=True, cwd=ROOT).stdout) for _ in range(args.repeat)]
            results[mode] = {"cpu": statistics.median(run["cpu"] for run in runs), "rows": runs[0]["rows"],
                             "rss": max(run["rss"] for run in runs), "all": [round(run["cpu"], 2) for run in runs]}
    with open("/proc/loadavg") as load:
        print(f"{args.format} report, {args.lines:,} lines, {args.breaks_pct}% differences (load {load.read()[:14]})")
    for mode, label in (("rows", "row parser"), ("fast", "Arrow")):
        result = results[mode]
        print(f"  {label:<11} {result['cpu']:6.2f} s CPU (median of {result['all']}), "
              f"{1e6 * result['cpu'] / result['rows']:5.1f} us a line, {result['rows']:,} rows, "
              f"peak RSS {result['rss']} MB")
    print(f"  row parser / Arrow: {results['rows']['cpu'] / results['fast']['cpu']:.1f}x")


if __name__ == "__main__":
    main()
