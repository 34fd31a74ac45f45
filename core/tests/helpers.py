"""Helpers the apps' tests share (importable from any app's tests)."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client


def operator_client(username: str = "pat", group: str = "Payment operators") -> Client:
    """A Django test client logged in as a staff user of ``group`` (the groups ``create_operator_groups`` makes)."""
    from django.contrib.auth.models import Group, User

    call_command("create_operator_groups")
    user = User.objects.create_user(username, password="x" * 16, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


def audit_violations(capsys) -> list[str]:
    """Run ``audit_money``, which must fail, and return the violations it printed."""
    capsys.readouterr()
    with pytest.raises(CommandError, match="violation"):
        call_command("audit_money")
    return [line.removeprefix("VIOLATION: ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("VIOLATION: ")]


def twin_race(first, twin, started, release):
    """Run ``first`` in a thread until it sets ``started``, then ``twin`` while ``first`` waits on ``release``,
    then ``twin`` again once ``first`` ended. Returns ``(twin during, first's result, twin after)``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        first_done = pool.submit(first)
        assert started.wait(10)
        try:
            during = pool.submit(twin).result(5)
        finally:
            release.set()
        first_result = first_done.result(10)
        after = pool.submit(twin).result(10)
    return during, first_result, after
