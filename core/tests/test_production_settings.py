"""Production refuses to start on a missing or public secret, and passes Django's deploy checks."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/marketplace",
    "PSP_API_KEY": "sk_test_" + secrets.token_hex(12),
    "PSP_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(12),
    "PSP_PUBLISHABLE_KEY": "pk_live_" + secrets.token_hex(12),
}


def check_deploy(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith(("DJANGO_", "PSP_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.production", **GOOD, **overrides})
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_real_secrets():
    run = check_deploy()
    assert run.returncode == 0, run.stderr
    assert "System check identified no issues (0 silenced)." in run.stdout
    assert "WARNING" not in run.stdout + run.stderr


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_missing_secret_stops_production_naming_it(name):
    run = check_deploy(**{name: None})
    assert run.returncode != 0
    assert f"{name} must be set in production" in run.stderr


@pytest.mark.parametrize(("name", "value"), [
    ("PSP_WEBHOOK_SECRET", "whsec_sandbox_secret"), ("PSP_API_KEY", "sk_test_sandbox"),
    ("PSP_PUBLISHABLE_KEY", "pk_test_sandbox"),
    ("DJANGO_SECRET_KEY", "dev-only-insecure-key"),
])
def test_the_repositorys_public_defaults_are_refused(name, value):
    run = check_deploy(**{name: value})
    assert run.returncode != 0
    assert f"{name} is a public default" in run.stderr
