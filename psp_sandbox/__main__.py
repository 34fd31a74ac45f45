"""Command line entry point: ``python -m psp_sandbox --host --port --db``."""

from __future__ import annotations

import argparse
import os
import signal
import time
from types import FrameType

from .server import Sandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """CLI flags; defaults come from PSP_SANDBOX_* environment variables."""
    p = argparse.ArgumentParser(prog="python -m psp_sandbox", description="Fake Stripe-compatible PSP.")
    p.add_argument("--host", default=os.environ.get("PSP_SANDBOX_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PSP_SANDBOX_PORT", "12111")))
    p.add_argument("--db", default=os.environ.get("PSP_SANDBOX_DB", "var/psp_sandbox.sqlite3"))
    p.add_argument(
        "--verbose",
        action="store_true",
        default=os.environ.get("PSP_SANDBOX_VERBOSE") == "1",
        help="log every request to stderr",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run until SIGTERM/SIGINT."""
    args = parse_args(argv)
    sandbox = Sandbox(args.db, args.host, args.port, verbose=args.verbose)
    # A plain flag: setting a threading.Event from a signal handler can deadlock when the
    # signal lands while the main thread holds the Event's lock inside wait().
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sandbox.start()
    print(f"psp_sandbox listening on {sandbox.url} (db={args.db})", flush=True)
    while not stopping:
        time.sleep(0.2)
    sandbox.stop()
    print("psp_sandbox stopped", flush=True)


if __name__ == "__main__":
    main()
