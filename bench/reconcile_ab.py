"""``reconcile.py`` on two checkouts in the same session, one after the other, and the ratios after/before.

    .venv/bin/python bench/reconcile_ab.py --before /tmp/main-copy --after . -- --lines 200000 --nights 4 --breaks-pct 1

Each checkout runs its own ``bench/reconcile.py`` with the arguments after ``--`` (its own fresh database:
``BENCH_DB_TAG`` as set); its whole output is printed, then the phases side by side, each in seconds and in
multiples of that run's own ``COPY``, with the ratio after/before and the breaks found per class of each.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

_PHASES = {"COPY": r"^COPY into a bare table\s+([0-9.]+) s", "import": r"^import \(report \+ statement\)\s+([0-9.]+) s",
           "reconcile": r"^reconcile\s+([0-9.]+) s", "import + reconcile": r"^import \+ reconcile\s+([0-9.]+) s",
           "peak RSS MB": r"^peak RSS\s+([0-9.]+) MB"}
_BREAKS = re.compile(r"^\s+(\w+)\s+(?:made\s+[0-9,]+\s+breaks open or resolved|\(not made\)\s+breaks)\s+([0-9,]+)",
                     re.MULTILINE)


def _run(tree: Path, args: list[str]) -> str:
    python = tree / ".venv" / "bin" / "python"
    out = subprocess.run([str(python if python.exists() else sys.executable), "bench/reconcile.py", *args],
                         cwd=tree, check=True, capture_output=True, text=True).stdout
    print(f"=== {tree}\n{out}", flush=True)
    return out


def _figures(out: str) -> dict[str, float]:
    return {name: float(re.search(pattern, out, re.MULTILINE).group(1)) for name, pattern in _PHASES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the checkout measured first (e.g. main's)")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="-- then reconcile.py's arguments")
    args = parser.parse_args()
    bench_args = [a for a in args.bench_args if a != "--"]
    before, after = _run(args.before.resolve(), bench_args), _run(args.after.resolve(), bench_args)
    figures = {"before": _figures(before), "after": _figures(after)}
    print(f"{'phase':20} {'before s':>9} {'x COPY':>7} {'after s':>9} {'x COPY':>7} {'after/before':>12}")
    for name in _PHASES:
        b, a = figures["before"][name], figures["after"][name]
        if name in ("COPY", "peak RSS MB"):
            print(f"{name:20} {b:9.2f} {'':>7} {a:9.2f} {'':>7} {a / b:12.2f}")
            continue
        bx, ax = b / figures["before"]["COPY"], a / figures["after"]["COPY"]
        print(f"{name:20} {b:9.2f} {bx:7.1f} {a:9.2f} {ax:7.1f} {a / b:12.2f}")
    found = {"before": dict(_BREAKS.findall(before)), "after": dict(_BREAKS.findall(after))}
    same = found["before"] == found["after"]
    print(f"breaks found per class: {'the same' if same else 'DIFFERENT'}: {found['after']}"
          + ("" if same else f" (before: {found['before']})"))


if __name__ == "__main__":
    main()
