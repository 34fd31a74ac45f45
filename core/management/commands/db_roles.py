"""The owner and app PostgreSQL roles (run by ``make migrate`` after ``migrate``; idempotent)."""
import environ
import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.db_roles import RoleSetupError, roles_ensure


def _params(config: dict) -> dict:
    return {"host": config["HOST"] or None, "port": config["PORT"] or 5432, "user": config["USER"],
            "password": config["PASSWORD"] or None, "dbname": config["NAME"]}


class Command(BaseCommand):
    help = ("Create or correct the tables' owner role and the app's role (DATABASE_URL's user): owner of "
            "every table, the app's least privileges, default privileges for future tables (idempotent).")

    def add_arguments(self, parser):
        parser.add_argument("--owner-url", default=None, help="connect as (default: DATABASE_OWNER_URL)")
        parser.add_argument("--owner-role", default=None,
                            help="role to own the tables (default: DATABASE_OWNER_ROLE, else the owner URL's user)")
        parser.add_argument("--app-url", default=None, help="the app's URL, for its role (default: DATABASE_URL)")

    def handle(self, *args, owner_url=None, owner_role=None, app_url=None, **options):
        owner = environ.Env.db_url_config(owner_url or settings.DATABASE_OWNER_URL)
        app = environ.Env.db_url_config(app_url) if app_url else settings.DATABASES["default"]
        owner_role = owner_role or settings.DATABASE_OWNER_ROLE or owner["USER"]
        if owner["NAME"] != app["NAME"]:
            raise CommandError(f"DATABASE_OWNER_URL names database {owner['NAME']!r}, "
                               f"DATABASE_URL {app['NAME']!r}: they must be the same")
        try:
            with psycopg.connect(**_params(owner)) as conn:
                report = roles_ensure(conn, owner_role=owner_role, app_role=app["USER"],
                                      app_password=app.get("PASSWORD") or None)
        except RoleSetupError as error:
            raise CommandError(str(error)) from error
        for name in report.created:
            self.stdout.write(f"created role {name}")
        if report.owner_changed:
            self.stdout.write(f"{len(report.owner_changed)} objects handed to {owner_role}")
        self.stdout.write(f"database {owner['NAME']}: tables owned by {owner_role}; {app['USER']} may read and "
                          "write, only read and add to the ledger and wallet movements")
