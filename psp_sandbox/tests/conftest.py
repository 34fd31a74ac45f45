"""The sandbox subprocess and SDK client fixtures of ``test_sandbox`` for every module here."""

from psp_sandbox.tests.test_sandbox import client, receiver, sandbox_url, url  # noqa: F401 - fixtures
