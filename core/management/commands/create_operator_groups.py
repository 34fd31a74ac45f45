"""Permission groups for the admin: who may look at what, and who may act."""
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db.models import Q

DEFAULT_ACTIONS = ("add_", "change_", "delete_", "view_")

# group -> (apps whose models it may view, extra permissions as "app_label.codename",
#           apps whose custom permissions it holds)
GROUPS = {
    "Payment operators": (("core", "payments", "wallet", "ledger"),
                          ("payments.replay_paymentorder", "payments.replay_refund",
                           "payments.refund_suspecteddoublecharge"), ()),
    "Finance operators": (("payments", "wallet", "ledger", "reconciliation"), ("reconciliation.add_settlementfile",),
                          ("reconciliation",)),
}


class Command(BaseCommand):
    help = "Create or update the operator permission groups (idempotent)."

    def handle(self, *args, **options):
        for name, (view_apps, extra, custom_apps) in GROUPS.items():
            group, _ = Group.objects.get_or_create(name=name)
            wanted = Q(content_type__app_label__in=view_apps, codename__startswith="view_")
            for label in extra:
                app_label, codename = label.split(".")
                wanted |= Q(content_type__app_label=app_label, codename=codename)
            custom = Q(content_type__app_label__in=custom_apps)
            for prefix in DEFAULT_ACTIONS:
                custom &= ~Q(codename__startswith=prefix)
            permissions = Permission.objects.filter(wanted | custom)
            group.permissions.set(permissions)
            self.stdout.write(f"{name}: {permissions.count()} permissions")
