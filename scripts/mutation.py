"""`make mutation`: mutmut 3 over the money modules, then the score per module (docs/mutation.md).

    python scripts/mutation.py run [MUTANT ...]   mutmut's own `run`, with the two changes below
    python scripts/mutation.py run-by-module      `run`, one process per mutated module (what `make mutation` runs)
    python scripts/mutation.py report             killed/survived/total per module and the score
    python scripts/mutation.py check [MIN]        report, and exit 1 below MIN percent (default 90)

Two changes to how mutmut 3.8 picks what to mutate, made here so that no source file carries a
pragma (the rest of mutmut is used as it is; `mutmut show NAME` and `mutmut browse` work as usual):

1. mutmut skips every decorated function, because a decorator that registers something (a route,
   a task) must not run once per mutant. Our services are decorated with ``transaction.atomic``
   (``ledger_transaction_post``, ``wallet_move``, ``payment_order_apply_result``,
   ``refund_create``, ``refund_apply_result``), which is where most of the money moves, so
   functions whose only decorators are ``transaction.atomic`` / ``transaction.atomic(...)`` are
   mutated here. mutmut keeps the decorators on the trampoline and on every copy of the function,
   so a mutant runs inside the same transaction as the original: a nested ``atomic`` is a
   savepoint (or nothing, with ``savepoint=False``), and the outcome is the same.
2. ``[tool.mutation.functions]`` in pyproject.toml narrows a file to the functions named there
   (a file not listed there is mutated whole), so that execution.py and refunds.py are mutated
   for their money postings, not for their PSP transport and retry orchestration.
"""
from __future__ import annotations

import json
import os
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# mutmut's exit codes (mutmut.stats.status_by_exit_code), as the report counts them.
KILLED = {1, 3, 36, -24, 24, 152, 255}  # a failing test, pytest's internal error, or a timeout (SIGXCPU)
SURVIVED = {0}
NO_TESTS = {5, 33}


def _scope() -> dict[str, set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {path: set(names) for path, names in config["tool"]["mutation"]["functions"].items()}


def _only_atomic(decorators) -> bool:
    """Every decorator is ``transaction.atomic`` or ``transaction.atomic(...)``."""
    import libcst as cst

    def is_atomic(node) -> bool:
        if isinstance(node, cst.Call):
            node = node.func
        return (isinstance(node, cst.Attribute) and node.attr.value == "atomic"
                and isinstance(node.value, cst.Name) and node.value.value == "transaction")

    return bool(decorators) and all(is_atomic(d.decorator) for d in decorators)


def _patch_mutmut() -> None:
    import libcst as cst
    from libcst.metadata import PositionProvider
    from mutmut.mutation import file_mutation

    visitor = file_mutation.MutationVisitor
    if not hasattr(visitor, "_skip_node_and_children") or not hasattr(file_mutation, "create_mutations"):
        raise SystemExit("scripts/mutation.py: mutmut's internals changed; pin mutmut==3.8.1 (requirements-dev.txt)")
    skip_original = visitor._skip_node_and_children
    create_original = file_mutation.create_mutations
    scope = _scope()
    current: dict[str, set[str] | None] = {"functions": None}

    def create_mutations(filename, *args, **kwargs):
        current["functions"] = scope.get(Path(filename).as_posix())
        try:
            return create_original(filename, *args, **kwargs)
        finally:
            current["functions"] = None

    def skip_node_and_children(self, node) -> bool:
        if isinstance(node, cst.FunctionDef) and self.get_metadata(file_mutation.OuterFunctionProvider, node,
                                                                   None) is node:
            functions = current["functions"]
            if functions is not None and node.name.value not in functions:
                return True  # outside [tool.mutation.functions]
            if _only_atomic(node.decorators):
                position = self.get_metadata(PositionProvider, node, None)
                if position and position.start.line in self._ignored_node_lines:  # "# pragma: no mutate block"
                    self.ignored_functions.add(node.name.value)
                    return True
                return node.name.value in file_mutation.NEVER_MUTATE_FUNCTION_NAMES
        return skip_original(self, node)

    visitor._skip_node_and_children = skip_node_and_children
    file_mutation.create_mutations = create_mutations


def _forget_database_connections() -> None:
    """In a forked child, drop (never close: it is the parent's socket too) every database connection
    inherited from the process that forked it, so the mutant's tests open their own. Sharing one
    PostgreSQL connection between parent and children broke their tests and counted equivalent
    mutants as killed."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections
    for conn in connections.all(initialized_only=True):
        conn.connection = None
        conn.in_atomic_block, conn.savepoint_ids, conn.needs_rollback = False, [], False


def run(argv: list[str]) -> None:
    here = Path(__file__).resolve().parent  # only mutants/ may provide the project's packages
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    os.register_at_fork(after_in_child=_forget_database_connections)  # mutmut forks one child per mutant
    _patch_mutmut()
    import mutmut.__main__ as mutmut_main

    sys.argv = ["mutmut", "run", *argv]
    mutmut_main.cli()


def run_by_module(argv: list[str]) -> None:
    """``run`` once per module of ``only_mutate``, each in a process of its own. One ``run`` over every
    module at once let earlier mutants' runs change later ones' outcomes: equivalent mutants of
    ``stripe_currencies`` (``x_to_stripe__mutmut_8``: ``shift >= 0`` → ``shift > 0``) came out killed
    in the whole run and survived in a run of their module, as they do alone."""
    import subprocess

    modules = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    for path in modules:
        pattern = path.removesuffix(".py").replace("/", ".") + ".*"
        print(f"--- {pattern}", flush=True)
        subprocess.run([sys.executable, __file__, "run", *argv, pattern], check=True)


def counts() -> dict[str, Counter]:
    """Per source file: killed, survived, no_tests, other (not checked, suspicious, ...) and total."""
    result: dict[str, Counter] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"].values()
        tally = Counter()
        for code in codes:
            kind = ("killed" if code in KILLED else "survived" if code in SURVIVED
                    else "no_tests" if code in NO_TESTS else "other")
            tally[kind] += 1
        tally["total"] = len(codes)
        if tally["total"]:
            result[meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")] = tally
    return result


def report() -> float:
    by_file = counts()
    if not by_file:
        raise SystemExit("no mutants/: run `make mutation` first")
    total = sum(by_file.values(), Counter())
    width = max(len(path) for path in by_file)
    print(f"{'module':<{width}}  killed  survived  no tests  other  total  score")
    for path, tally in [*by_file.items(), ("all", total)]:
        score = 100 * tally["killed"] / tally["total"]
        print(f"{path:<{width}}  {tally['killed']:>6}  {tally['survived']:>8}  {tally['no_tests']:>8}"
              f"  {tally['other']:>5}  {tally['total']:>5}  {score:5.1f}%")
    score = 100 * total["killed"] / total["total"]
    print(f"mutation score: {total['killed']}/{total['total']} killed = {score:.1f}%"
          " (survivors, no tests and unchecked all count against it)")
    return score


def main() -> None:
    command, *rest = sys.argv[1:] or ["run"]
    if command == "run":
        run(rest)
    elif command == "run-by-module":
        run_by_module(rest)
    elif command == "report":
        report()
    elif command == "check":
        minimum = float(rest[0]) if rest else 90.0
        if report() < minimum:
            print(f"below the required {minimum:.0f}%")
            raise SystemExit(1)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
