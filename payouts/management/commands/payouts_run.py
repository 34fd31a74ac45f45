from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Sum
from django.utils import timezone

from payouts.services import payouts_run


class Command(BaseCommand):
    help = ("Pay out every seller's available balance at or above PAYOUT_MINIMUM (one payout per seller, "
            "currency and date; the same date again adds nothing), and print the run's report.")

    def add_arguments(self, parser):
        parser.add_argument("--date", help="the run's date YYYY-MM-DD (default: today, UTC)")
        parser.add_argument("--seller", action="append", dest="sellers", metavar="SELLER_ID",
                            help="only this seller (repeatable)")
        parser.add_argument("--reason", default="", help="why, kept on the run")

    def handle(self, *args, date: str | None = None, sellers=None, reason: str = "", **options):
        try:
            day = timezone.now().date() if date is None else _parse(date)
        except ValueError as exc:
            raise CommandError(f"--date must be YYYY-MM-DD: {exc}") from exc

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  {done}/{total} balances looked at")

        run = payouts_run(payout_date=day, actor="command:payouts_run", reason=reason, seller_ids=sellers,
                          progress=progress)
        self.stdout.write(f"payout run {run.id} for {day}: {run.payouts_created} payouts created, "
                          f"{run.skipped} skipped")
        rows = run.items.values("outcome", "currency").annotate(count=Count("id"), amount=Sum("available_amount"))
        for row in rows.order_by("outcome", "currency"):
            self.stdout.write(f"{row['outcome']:<24} {row['currency']}  count={row['count']}  "
                              f"available={row['amount']}")


def _parse(value: str) -> date:
    return date.fromisoformat(value)
