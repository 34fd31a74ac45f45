"""``bench/_switches.py``: the context switches ``bench/checkout.py`` prints per process group, counted over every
thread of a stack process and over the live backends of the stack's database, and nothing of anyone else's."""
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from _switches import OUR_DB, format_switches, switch_snapshot  # noqa: E402

# A process whose second thread sleeps 200 times (each sleep one voluntary switch, in a thread, not the main one)
# and then lives on: a thread that has exited takes its count with it.
SLEEPER = """
import sys, threading, time
def naps():
    for _ in range(200):
        time.sleep(0.001)
    print("done", flush=True)
    threading.Event().wait()
sys.stdin.readline()
threading.Thread(target=naps, daemon=True).start()
sys.stdin.readline()
"""


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own process group, as the stack's are
    yield proc
    proc.kill()
    proc.wait()


def test_a_stack_process_counts_its_threads_switches(sleeper):
    stack = SimpleNamespace(procs={"worker#2": sleeper}, db_name="no_such_database_here")
    time.sleep(0.2)
    before = switch_snapshot(stack)
    sleeper.stdin.write("go\n")
    sleeper.stdin.flush()
    assert sleeper.stdout.readline() == "done\n"
    after = switch_snapshot(stack)
    assert set(after) == {"worker", OUR_DB}  # "worker#2" counted with the workers
    assert after["worker"][0] - before["worker"][0] >= 200
    assert after[OUR_DB] == (0, 0)  # no backend of that database: nobody else's counted
    line = format_switches(before, after, 100, "order")
    assert line.startswith("  context switches per order, voluntary / involuntary: worker ")


@pytest.mark.django_db
def test_our_databases_backends_are_counted():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        stack = SimpleNamespace(procs={}, db_name=connection.settings_dict["NAME"])
        before = switch_snapshot(stack)
        for _ in range(50):
            cursor.execute("SELECT 1")
        after = switch_snapshot(stack)
    # Each round trip switches the backend out once: it waits for the next query (voluntary) or, on a busy
    # machine, was preempted after its answer and finds the query there (involuntary, no wait).
    assert sum(after[OUR_DB]) - sum(before[OUR_DB]) >= 50
