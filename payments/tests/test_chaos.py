"""The short chaos runs: bench/chaos.py with few orders, faults and worker SIGKILLs, sellers paid out during one.

Each run is a stack of its own (database, queue, ports: ``bench/_stack.py``) that mostly waits on its sandbox's
faults and its kill schedule, so the module starts the runs its selected tests need side by side, once, and each
test reads its own run's outcome.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, _interrupt

# bench/chaos.py's arguments and Redis databases (broker, rate limiter), by the test that reads the run. A broker
# database each: a restarted worker restores the expired unacknowledged messages of its whole database (kombu's
# Redis transport keeps them per database, not per queue), which would put the other run's back on its queue.
RUNS = {
    "test_short_chaos_run_converges_with_no_double_charge_and_no_double_payout": (
        ["--orders", "80", "--kill-every", "1.5", "--payouts", "--payout-every", "3", "--converge-timeout", "120"],
        (6, 7)),
    "test_short_chaos_run_of_multi_order_checkouts_converges_with_no_double_charge": (
        ["--orders", "80", "--orders-per-checkout", "2", "--kill-every", "1.5", "--converge-timeout", "120"],
        (8, 9)),
}


@pytest.fixture(scope="module")
def chaos_runs(request, tmp_path_factory):
    """The selected tests' runs, started together: {test name: (process, stdout file, stderr file)}."""
    selected = {item.originalname for item in request.session.items if item.module is request.module}
    logs = tmp_path_factory.mktemp("chaos")
    runs = {}
    for name in sorted(selected & RUNS.keys()):
        out, err = logs / f"{name}.json", logs / f"{name}.err"
        argv, (broker, rate_limits) = RUNS[name]
        env = {**os.environ, "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{broker}",
               "RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:6379/{rate_limits}"}
        with open(out, "w") as stdout, open(err, "w") as stderr:
            runs[name] = (subprocess.Popen([sys.executable, "bench/chaos.py", *argv, "--json"], cwd=ROOT, env=env,
                                           stdout=stdout, stderr=stderr), out, err)
    yield runs
    for proc, _, _ in runs.values():
        _interrupt(proc)


def outcome(chaos_runs, name: str) -> dict:
    proc, out, err = chaos_runs[name]
    returncode = proc.wait(timeout=420)
    assert returncode == 0, err.read_text()[-3000:]
    return json.loads(out.read_text().strip().splitlines()[-1])


@pytest.mark.integration
def test_short_chaos_run_converges_with_no_double_charge_and_no_double_payout(chaos_runs):
    result = outcome(chaos_runs, "test_short_chaos_run_converges_with_no_double_charge_and_no_double_payout")
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
def test_short_chaos_run_of_multi_order_checkouts_converges_with_no_double_charge(chaos_runs):
    """Checkouts of two orders, each executed by its payment event's task, buyers new and returning."""
    result = outcome(chaos_runs, "test_short_chaos_run_of_multi_order_checkouts_converges_with_no_double_charge")
    assert result["orders_created"] == 80 and result["worker_kills"] >= 2 and result["faults_injected_total"] > 0
    assert result["double_charges"] == 0 and result["not_terminal"] == 0
    assert result["audit_money"] == "audit_money: all invariants hold"
    assert result["psp_captured"] == result["our_succeeded_total"] > 0
