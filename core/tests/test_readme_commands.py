"""The README's commands work exactly as typed: every `make manage ARGS="…"` row of its command table runs
its command's --help through that same route (the Makefile's target, the venv's python, its environment)."""
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def documented_commands() -> list[str]:
    """The management commands named in the README's "Commands" table (`make manage ARGS="NAME …"`)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r'^\| `make manage ARGS="([a-z_]+)[^"]*"` \|', table, flags=re.M)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    bare = [row for row in rows if "manage.py" in row.split("|")[1]]
    assert not bare, f"the table documents a bare manage.py again: {bare}"
    return names


def test_the_table_documents_the_commands():
    assert {"create_api_key", "create_operator", "audit_money", "import_settlement", "reconcile",
            "create_operator_groups", "db_roles"} <= set(documented_commands())


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_answers_help_through_make_manage(command):
    done = subprocess.run(["make", "--no-print-directory", "manage", f"ARGS={command} --help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"make manage ARGS={shlex.quote(command + ' --help')}: {done.stderr[-2000:]}"
    assert f"usage: manage.py {command}" in done.stdout
