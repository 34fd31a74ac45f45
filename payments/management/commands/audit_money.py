from django.core.management.base import BaseCommand, CommandError

from payments.audit import money_audit
from payments.selectors import order_totals_by_state


class Command(BaseCommand):
    help = "Check the money invariants: trial balance, wallets = payables, one posting per success."

    def handle(self, *args, **options):
        for row in order_totals_by_state():
            self.stdout.write(f"orders {row['state']:<12} {row['currency']}  count={row['count']}  "
                              f"amount={row['amount']}")
        violations = money_audit()
        for line in violations:
            self.stdout.write(self.style.ERROR(f"VIOLATION: {line}"))
        if violations:
            raise CommandError(f"{len(violations)} violation(s) of the money invariants")
        self.stdout.write(self.style.SUCCESS("audit_money: all invariants hold"))
