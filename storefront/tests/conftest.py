"""The browser fixtures of the hosted page's tests (Debian's Chromium through Playwright)."""
from payments.tests.test_hosted_page_browser import chromium, page  # noqa: F401 - fixtures
