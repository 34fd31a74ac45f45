"""The short chaos run: bench/chaos.py with few orders, faults and worker SIGKILLs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_short_chaos_run_converges_with_no_double_charge():
    run = subprocess.run([sys.executable, "bench/chaos.py", "--orders", "80", "--kill-every", "1.5",
                          "--converge-timeout", "120", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["orders_created"] == 80
    assert result["worker_kills"] >= 2
    assert result["faults_injected_total"] > 0
    assert result["double_charges"] == 0
    assert result["not_terminal"] == 0
    assert result["audit_money"] == "audit_money: all invariants hold"
    assert result["psp_captured"] == result["our_succeeded_total"] > 0
