import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reconciliation.exceptions import SettlementImportError
from reconciliation.importers import FORMATS
from reconciliation.services import settlement_file_import


@contextmanager
def _quiet(logger_name: str, verbosity: int):
    """The command prints the import's result itself: the service's INFO line would say it a second time
    (``event=settlement_file_imported``, kept for the Celery task's logs). ``-v 2`` shows it as well."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    if verbosity < 2:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class Command(BaseCommand):
    help = "Import a PSP settlement report or bank statement (once per file content)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", dest="fmt", default="auto", choices=("auto", *FORMATS))
        parser.add_argument("--progress-every", type=int, default=100_000, help="lines between progress reports")

    def handle(self, *args, path: Path, fmt: str, progress_every: int, **options):
        def progress(lines: int) -> None:
            sys.stderr.write(f"{path.name}: {lines:,} lines\n")
            sys.stderr.flush()

        try:
            with _quiet("reconciliation.services.importing", options["verbosity"]):
                result = settlement_file_import(path=path, fmt=fmt, actor="command:import_settlement",
                                                progress=progress, progress_every=progress_every)
        except SettlementImportError as exc:
            raise CommandError(str(exc)) from exc
        file = result.file
        if not result.created:
            self.stdout.write(f"{path.name}: already imported as file #{file.pk} on {file.imported_at:%Y-%m-%d %H:%M}"
                              f" ({file.sha256[:12]}); nothing changed")
            return
        types = ", ".join(f"{name}={count}" for name, count in file.counts_by_type.items()) or "none"
        self.stdout.write(f"{path.name}: imported as file #{file.pk}, format {file.format}, {file.line_count} lines"
                          f" ({types}); {file.malformed_count} malformed")
