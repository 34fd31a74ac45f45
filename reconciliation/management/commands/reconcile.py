from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from reconciliation.services import reconciliation_run


class Command(BaseCommand):
    help = "Match open settlement lines to our books, book fees and payouts, and print the breaks per class."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="business day YYYY-MM-DD (default: yesterday, UTC)")

    def handle(self, *args, date: str | None = None, **options):
        try:
            day = (timezone.now().date() - timedelta(days=1)) if date is None else _parse(date)
        except ValueError as exc:
            raise CommandError(f"--date must be YYYY-MM-DD: {exc}") from exc
        run = reconciliation_run(day=day, actor="command:reconcile")
        stats = run.stats
        self.stdout.write(f"reconciliation run #{run.pk} for {day}: {run.lines_evaluated} lines evaluated "
                          f"{stats.get('lines', {})}")
        breaks = stats.get("breaks", {})
        if not breaks:
            self.stdout.write(self.style.SUCCESS("no breaks"))
        for klass, entry in breaks.items():
            amounts = ", ".join(f"{amount} {currency}" for currency, amount in entry["amounts"].items())
            self.stdout.write(f"{klass:<22} count={entry['count']} new={entry['new']} open={entry['open']}"
                              f" amounts=[{amounts}]")
        self.stdout.write(f"fees booked: {stats.get('fees_booked', {})}; payouts: {stats.get('payouts', {})}")


def _parse(value: str) -> date:
    return date.fromisoformat(value)
