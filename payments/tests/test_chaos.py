"""The short chaos run: bench/chaos.py with few orders, faults and worker SIGKILLs, sellers paid out during it."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_short_chaos_run_converges_with_no_double_charge_and_no_double_payout():
    run = subprocess.run([sys.executable, "bench/chaos.py", "--orders", "80", "--kill-every", "1.5", "--payouts",
                          "--payout-every", "3", "--converge-timeout", "120", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["orders_created"] == 80
    assert result["worker_kills"] >= 2
    assert result["faults_injected_total"] > 0
    assert result["double_charges"] == 0
    assert result["not_terminal"] == 0
    assert result["audit_money"] == "audit_money: all invariants hold"
    assert result["psp_captured"] == result["our_succeeded_total"] > 0
    # Money out under the same chaos: paid once, nothing left hanging, the PSP's payouts are our books'.
    assert result["payout_rounds"] >= 2 and result["payout_runs_failed"] == 0
    assert result["payouts_ours"] > 0 and result["payouts_states"].get("paid", 0) > 0
    assert result["double_payouts"] == 0 and result["psp_objects_not_ours"] == 0
    assert result["payouts_lost"] == 0 and result["payouts_state_mismatch"] == 0
    assert result["psp_paid_out"] == result["our_paid_total"] == result["psp_net_transferred"] > 0
    assert result["payout_accounts_unusable"] >= 1  # the sellers paying to a closed bank account


@pytest.mark.integration
def test_short_chaos_run_of_multi_order_checkouts_converges_with_no_double_charge():
    """Checkouts of two orders, each executed by its payment event's task, buyers new and returning."""
    run = subprocess.run([sys.executable, "bench/chaos.py", "--orders", "80", "--orders-per-checkout", "2",
                          "--kill-every", "1.5", "--converge-timeout", "120", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["orders_created"] == 80 and result["worker_kills"] >= 2 and result["faults_injected_total"] > 0
    assert result["double_charges"] == 0 and result["not_terminal"] == 0
    assert result["audit_money"] == "audit_money: all invariants hold"
    assert result["psp_captured"] == result["our_succeeded_total"] > 0
