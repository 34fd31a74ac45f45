"""The sandbox answers and stores what it did before its CPU work, byte for byte (``answers_record``)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from psp_sandbox.tests import answers_record

RECORD = Path(__file__).with_name("same_answers.json.gz")


def _first_difference(name: str, want: object, got: object) -> str:
    a, b = json.dumps(want, indent=1).splitlines(), json.dumps(got, indent=1).splitlines()
    return f"{name}:\n" + "\n".join(list(difflib.unified_diff(a, b, "recorded", "now", lineterm="", n=2))[:40])


def test_answers_events_and_rows_are_the_recorded_ones_byte_for_byte():
    want, got = answers_record.load(RECORD), answers_record.record()
    assert [a["name"] for a in got["answers"]] == [a["name"] for a in want["answers"]]
    for was, now in zip(want["answers"], got["answers"], strict=True):
        assert now == was, _first_difference(was["name"], was, now)
    assert sorted(got["tables"]) == sorted(want["tables"])
    for table, rows in want["tables"].items():
        assert got["tables"][table] == rows, _first_difference(table, rows, got["tables"][table])


def test_the_record_covers_the_drains_calls_and_the_paths_beside_them():
    want = answers_record.load(RECORD)
    statuses = {a["name"]: a["status"].split()[1] for a in want["answers"]}
    assert statuses["cus"] == statuses["pi"] == "200"
    assert {statuses["declined"], statuses["saved_500"], statuses["pi_conflict"], statuses["not_found"]} == {
        "402", "500", "400", "404"}
    assert any("Idempotent-Replayed: true" in a["headers"] for a in want["answers"])
    events = {row[2] for row in want["tables"]["events"]}  # (seq, id, type, ...)
    assert {"customer.created", "payment_method.attached", "payment_intent.created", "charge.succeeded",
            "payment_intent.succeeded", "charge.failed", "payment_intent.requires_action"} <= events
