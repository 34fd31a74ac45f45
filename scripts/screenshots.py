"""`make screenshots`: the operators' console in Debian's Chromium at a desktop's 1440×900 and a phone's 390×844.

Starts from nothing each run in its own database (SCREENSHOTS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/marketplace_screenshots: dropped, created and migrated), seeds a little of
everything (payments/tests/console_seed.py: no PSP sandbox, no worker, nothing else started), serves the admin
from this process on a free port, logs in as an operator and writes docs/screenshots/admin-<page>-<width>.png of
the main pages (``MAIN``; ``--all``: every page measured). For each page it prints whether it scrolls sideways
(``document.documentElement.scrollWidth`` against the window's width, and the widest table's overflow inside its
own box) and, at 1440 px, axe-core's serious violations. Exits 1 if a page scrolls sideways at 1440 px.
``--measure-only`` writes no PNGs."""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/marketplace_screenshots"
WIDTHS = {"1440": (1440, 900), "390": (390, 844)}
# Pages whose PNGs are written (and committed, docs/operators-console.md); --all writes every page measured.
MAIN = {"dashboard", "orders", "order-timeline", "dead-letter-timeline", "breaks"}


def _reset_database(url: str) -> None:
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    params = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"],
              "password": config["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config["NAME"])))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int):
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", port), Quiet, allow_reuse_address=True)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page (axe-playwright-python bundles axe-core)."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        return ["(axe-playwright-python not installed)"]
    page.evaluate(Axe().axe_script)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}, {len(v['nodes'])})" for v in results["violations"]
            if v["impact"] in ("serious", "critical")]


def pages(seeded: dict) -> list[tuple[str, str]]:
    """(name, path) of the pages shown."""
    found, dead = seeded["found"], seeded["dead"]
    return [
        ("dashboard", "/admin/"),
        ("orders", "/admin/payments/paymentorder/"),
        ("order-timeline", f"/admin/payments/paymentorder/{found.pk}/timeline/"),
        ("dead-letter-timeline", f"/admin/payments/paymentorder/{dead.pk}/timeline/"),
        ("checkouts", "/admin/payments/paymentevent/"),
        ("breaks", "/admin/reconciliation/break/"),
        ("ledger-transactions", "/admin/ledger/ledgertransaction/"),
        ("ledger-accounts", "/admin/ledger/account/"),
        ("wallets", "/admin/wallet/wallet/"),
        ("webhooks", "/admin/payments/webhookevent/"),
    ]


def _setup_django(url: str):
    """Django on a fresh database ``url``, migrated and seeded; returns ``(operator, password, pages)``."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    # Tasks the seed's services publish (a refund's) stay in this process: never on a running stack's broker.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    _reset_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from payments.tests.console_seed import OPERATOR, PASSWORD, console_seed

    call_command("migrate", verbosity=0)
    return OPERATOR, PASSWORD, pages(console_seed())


def _measure(page, label: str, name: str) -> str:
    """Print how wide the page is against the window (and axe's serious findings at 1440 px); its verdict."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    client = page.evaluate("document.documentElement.clientWidth")
    # A changelist's table scrolls inside its own box (.results): hidden columns all the same.
    inner = page.evaluate("Math.max(0, ...[...document.querySelectorAll('.results, .scroll-x')]"
                          ".map(e => e.scrollWidth - e.clientWidth))")
    verdict = "ok" if scroll <= client and inner <= 0 else "SCROLLS SIDEWAYS"
    axe = ", ".join(serious_violations(page)) or "none" if label == "1440" else "-"
    print(f"{label:>5} px  {name:<22} page {scroll:>5} / {client:>5}, tables {inner:>+5} px  {verdict:<8}"
          f"  axe serious: {axe}")
    if verdict != "ok" and os.environ.get("SCREENSHOTS_PROBE"):
        print(page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
                            ".right > document.documentElement.clientWidth + 1).slice(0, 8).map(e => "
                            "e.tagName + '.' + e.className + '#' + e.id + '=' + "
                            "Math.round(e.getBoundingClientRect().right)).join(' ')"))
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--measure-only", action="store_true")
    parser.add_argument("--all", action="store_true", help="a PNG of every page measured, not only the main ones")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium: apt-get install chromium", file=sys.stderr)
        return 2
    operator, password, shown = _setup_django(os.environ.get("SCREENSHOTS_DATABASE_URL", DEFAULT_DB))
    port = _free_port()
    server = _serve(port)
    base = f"http://127.0.0.1:{port}"

    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sideways = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        for label, (width, height) in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", operator)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            for name, path in shown:
                page.goto(base + path)
                if _measure(page, label, name) != "ok" and label == "1440":
                    sideways.append(name)
                if not args.measure_only and (args.all or name in MAIN):
                    page.screenshot(path=str(out / f"admin-{name}-{label}.png"), full_page=True)
            context.close()
        browser.close()
    server.shutdown()
    if not args.measure_only:
        print(f"screenshots written to {out}")
    return 1 if sideways else 0


if __name__ == "__main__":
    sys.exit(main())
