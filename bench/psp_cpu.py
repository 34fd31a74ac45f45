"""The PSP sandbox's own CPU per call, for the two calls a checkout's drain makes of it.

    .venv/bin/python bench/psp_cpu.py                  # sandbox CPU per call (/proc/<pid>/stat), ms
    .venv/bin/python bench/psp_cpu.py --callgrind      # instructions per call, the sandbox under callgrind

The sandbox is started as the stack starts it (``python -m psp_sandbox --port --db``, bench/_stack.py), on a
fresh SQLite file of its own, with no webhook URL (as ``bench/checkout.py --drain`` runs it: events are stored,
not delivered). The bench drives, over one keep-alive connection (``http.client``), with the headers and
form bodies the Stripe SDK sends:

- ``customers``: ``POST /v1/customers`` with ``payment_method=pm_card_visa`` (a new buyer's first call);
- ``payment_intents``: ``POST /v1/payment_intents`` with ``confirm=true`` (one per order), each under a key
  of its own, for the customers the first phase made;
- with ``--connections C``, ``orders``: a checkout's drain as the sandbox sees it, per 2-order event one
  customer and two PaymentIntents, from C client threads at once, each over its own keep-alive connection
  (the worker's threads keep one each: the sandbox then runs C handler threads), printed per order.

Each phase warms up (``--warmup`` calls), then counts ``--calls`` calls: the sandbox process's user + system
ticks before and after (``/proc/<pid>/stat``, 10 ms ticks: use calls in the thousands), or, under
``--callgrind`` (``valgrind --tool=callgrind --instr-atstart=no``), the instructions between
``callgrind_control -i on`` and ``--dump``. The sandbox's background threads (the processing worker polls every
50 ms) cost something when idle: an idle phase of a few seconds measures that rate, and each figure is
printed less the idle cost of the phase's wall time (the raw figure beside it). Figures are printed, never
asserted.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from bench._stack import CLK_TCK, free_port, wait_http  # noqa: E402

# What stripe-python 16.1.0 sends (the worker's http client keeps the connection open).
SDK_HEADERS = {
    "User-Agent": "Stripe/v1 PythonBindings/16.1.0",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
    "X-Stripe-Client-User-Agent": '{"bindings_version": "16.1.0", "lang": "python", "httplib": "requests", '
                                  '"telemetry_id": "4ff450f026d9dca6b6d872fb469d368a", "lang_version": "3.11.7", '
                                  '"platform": "Linux-x86_64-with-glibc2.36"}',
    "Authorization": "Bearer sk_test_bench",
    "Content-Type": "application/x-www-form-urlencoded",
    "Stripe-Version": "2026-10-28.endive",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true", help="instructions per call, the sandbox under valgrind")
    parser.add_argument("--calls", type=int, help="measured calls per kind (default 3000; 300 under --callgrind)")
    parser.add_argument("--warmup", type=int, default=50, help="calls of each kind before counting (default 50)")
    parser.add_argument("--callgrind-keep", metavar="DIR", help="copy the callgrind dumps there (callgrind_annotate)")
    parser.add_argument("--connections", type=int, default=0,
                        help="also the per-order mix from this many concurrent connections (default: not run)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="the idle phase's length (default 3)")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="the sandbox's latency_ms for the --connections phase (default 0)")
    parser.add_argument("--only-connections", action="store_true",
                        help="skip the single-connection phases (with --connections)")
    args = parser.parse_args()
    if args.calls is None:
        args.calls = 300 if args.callgrind else 3000
    return args


class Sandbox:
    """The sandbox process, its CPU ticks, and callgrind's controls when it runs under valgrind."""

    def __init__(self, callgrind: bool) -> None:
        self.callgrind, self.dumps = callgrind, 0
        self.dir = Path(tempfile.mkdtemp(prefix="psp_cpu."))
        self.port = free_port()
        self.out = str(self.dir / "sandbox.callgrind")
        argv = [sys.executable, "-m", "psp_sandbox", "--port", str(self.port), "--db", str(self.dir / "psp.sqlite3")]
        if callgrind:
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={self.out}", *argv]
        env = {**os.environ, "PSP_SANDBOX_WEBHOOK_URL": "", "PSP_SANDBOX_WEBHOOK_SECRET": "whsec_bench"}
        self.log = open(self.dir / "sandbox.log", "w")  # noqa: SIM115  (kept open for the process's life)
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/_sandbox/health", timeout=300 if callgrind else 30)

    def ticks(self) -> int:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            data = f.read()
        rest = data[data.rindex(")") + 2:].split()
        return int(rest[11]) + int(rest[12])

    def switches(self) -> int:
        """Context switches (voluntary + involuntary) of the sandbox's live threads so far."""
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                lines = (task / "status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in lines if line.endswith("ctxt_switches") is False
                         and line.split(":")[0] in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
        return total

    def latency(self, ms: int) -> None:
        """Set the sandbox's ``latency_ms`` to ``[ms, ms]``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", "/_sandbox/config", body=f'{{"latency_ms": [{ms}, {ms}]}}',
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200, response.read()[:300]
        conn.close()

    def _control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(self.proc.pid)], check=True, capture_output=True)

    def start(self) -> float:
        if self.callgrind:
            self._control("-i", "on")
            return 0.0
        return self.ticks() * 1000 / CLK_TCK

    def stop(self, started: float) -> float:
        """Instructions, or CPU milliseconds, since ``start``."""
        if not self.callgrind:
            return self.ticks() * 1000 / CLK_TCK - started
        self._control("--dump")
        self._control("-i", "off")
        self.dumps += 1
        for line in Path(f"{self.out}.{self.dumps}").read_text().splitlines():
            if line.startswith("totals:"):  # "summary:" can come out wrapped below zero (threads)
                return float(line.split()[1])
        raise SystemExit(f"no totals in {self.out}.{self.dumps}")

    def close(self, keep: str | None = None) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for dump in self.dir.glob("sandbox.callgrind*"):
                shutil.copy(dump, keep)
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """One keep-alive connection, the SDK's headers."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.waits: list[float] = []  # each call's time, as this client saw it

    def post(self, path: str, body: str, key: str) -> tuple[int, bytes]:
        started = time.monotonic()
        self.conn.request("POST", path, body=body.encode(), headers={**SDK_HEADERS, "Idempotency-Key": key})
        response = self.conn.getresponse()
        answer = response.status, response.read()
        self.waits.append(time.monotonic() - started)
        return answer


def customer_body(run: str, i: int) -> str:
    return (f"metadata[buyer_reference]=buyer-{run}-{i}&email=buyer-{i}%40example.com"
            f"&payment_method=pm_card_visa")


def intent_body(run: str, i: int, customer: str) -> str:
    return (f"amount={1000 + i % 5000}&currency=usd&payment_method=pm_card_visa"
            f"&allowed_payment_method_types[0]=card&confirm=true&metadata[payment_event_id]=pe_{run}{i // 2}"
            f"&metadata[payment_order_id]=ord_{run}{i}&off_session=true&customer={customer}")


def orders_over(clients: list[Client], run: str, first: int, n: int) -> None:
    """``n`` orders (n / 2 events: a customer, then its two PaymentIntents) over ``clients``, one thread each."""
    events = itertools.count(first // 2)
    lock = threading.Lock()

    def connection(own: Client) -> None:
        while True:
            with lock:
                j = next(events)
            if j >= (first + n) // 2:
                return
            status, raw = own.post("/v1/customers", customer_body(run, j), f"mix-customer:{run}:{j}")
            assert status == 200, raw[:300]
            cus = raw.split(b'"id": "', 1)[1].split(b'"', 1)[0].decode()
            for i in (2 * j, 2 * j + 1):
                status, raw = own.post("/v1/payment_intents", intent_body(run, i, cus), f"mix:{run}:{i}")
                assert status == 200, raw[:300]

    with ThreadPoolExecutor(len(clients)) as pool:
        for done in [pool.submit(connection, own) for own in clients]:
            done.result()


def connections_phase(args: argparse.Namespace, sandbox: Sandbox, run: str, measure, idle_rate: float
                      ) -> tuple[str, tuple[float, float]]:
    """The drain's mix over ``--connections`` keep-alive connections at ``--latency-ms``: (label, figures)."""
    clients = [Client(sandbox.port) for _ in range(args.connections)]  # kept open, as the worker's are
    n = 2 * max(args.calls // 2, args.connections)
    orders_over(clients, run, 0, 2 * args.connections)  # every connection opened and warm
    sandbox.latency(args.latency_ms)
    switched = sandbox.switches()
    for own in clients:
        own.waits.clear()
    cost, wall = measure(lambda: orders_over(clients, run, 2 * args.connections, n))
    switched = sandbox.switches() - switched
    waits = sorted(w for own in clients for w in own.waits)
    print(f"  (each call as the clients saw it: p50 {waits[len(waits) // 2] * 1000:.1f} ms, "
          f"p99 {waits[int(len(waits) * 0.99)] * 1000:.1f} ms)")
    label = f"orders ({args.connections} conn, {args.latency_ms} ms)"
    print(f"  ({label}: {n} orders in {wall:.1f} s, {switched / n:.1f} context switches per order)")
    return label, (cost / n, (cost - idle_rate * wall) / n)


def run_phases(args: argparse.Namespace, sandbox: Sandbox) -> dict[str, tuple[float, float]]:
    """{phase: (raw cost, idle-corrected cost)} for all the measured calls of each phase."""
    client, run = Client(sandbox.port), uuid.uuid4().hex[:8]
    customers: list[str] = []

    def customer(i: int) -> None:
        status, raw = client.post("/v1/customers", customer_body(run, i), f"customer:{run}:{i}")
        assert status == 200, raw[:300]
        customers.append(raw.split(b'"id": "', 1)[1].split(b'"', 1)[0].decode())

    def intent(i: int) -> None:
        cus = customers[i // 2 % len(customers)]
        status, raw = client.post("/v1/payment_intents", intent_body(run, i, cus), f"order:{run}:{i}")
        assert status == 200, raw[:300]

    def measure(work) -> tuple[float, float]:
        started, wall = sandbox.start(), time.monotonic()
        work()
        return sandbox.stop(started), time.monotonic() - wall

    started = sandbox.start()
    time.sleep(args.idle_seconds)
    idle_rate = sandbox.stop(started) / args.idle_seconds
    figures = {"idle, per second": (idle_rate, idle_rate)}
    for name, fn in (("customers (payment_method)", customer), ("payment_intents (confirm)", intent)):
        if args.only_connections and args.connections:
            break
        for i in range(args.warmup):
            fn(i)
        cost, wall = measure(lambda fn=fn: [fn(i) for i in range(args.warmup, args.warmup + args.calls)])
        figures[name] = (cost / args.calls, (cost - idle_rate * wall) / args.calls)
    if args.connections:
        label, per_order = connections_phase(args, sandbox, run, measure, idle_rate)
        figures[label] = per_order
    return figures


def main() -> None:
    args = parse_args()
    sandbox = Sandbox(args.callgrind)
    try:
        figures = run_phases(args, sandbox)
    finally:
        sandbox.close(args.callgrind_keep)
    unit = "instructions" if args.callgrind else "ms CPU"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    head = "under callgrind" if args.callgrind else "/proc/<pid>/stat"
    print(f"PSP sandbox, {args.calls} calls per kind after {args.warmup} warm-up, {head}; load {load}")
    for name, (raw, net) in figures.items():
        per = "" if name.startswith("idle") else " per order" if name.startswith("orders") else " per call"
        name = name[:40]
        if args.callgrind:
            print(f"  {name:<32} {net:>12,.0f} {unit}{per} (raw {raw:,.0f})")
        else:
            print(f"  {name:<32} {net:>8.3f} {unit}{per} (raw {raw:.3f})")


if __name__ == "__main__":
    main()
