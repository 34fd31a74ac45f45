"""Permission groups for the admin: who may look at what, and who may act."""
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand
from django.db.models import Q

DEFAULT_ACTIONS = ("add_", "change_", "delete_", "view_")

# group -> (apps whose models it may view, extra permissions as "app_label.codename",
#           apps whose custom permissions it holds)
GROUPS = {
    "Payment operators": (("core", "payments", "wallet", "ledger"),
                          ("payments.replay_paymentorder", "payments.replay_refund",
                           "payments.refund_suspecteddoublecharge", "payments.reprocess_webhookevent"), ()),
    "Finance operators": (("payments", "wallet", "ledger", "reconciliation"), ("reconciliation.add_settlementfile",),
                          ("reconciliation",)),
    # Maker-checker: the second operator who approves (posts) or rejects the corrections finance operators propose;
    # they work a break too (assign it, add notes: work_break), which moves no money.
    "Finance approvers": (("payments", "wallet", "ledger", "reconciliation"),
                          ("reconciliation.approve_correction", "reconciliation.work_break"), ()),
}

# Custom permissions a group's apps would give it but it must not hold: who proposes a correction
# (reconciliation.propose_correction) does not approve one.
WITHHELD = {
    "Finance operators": ("reconciliation.approve_correction",),
}

# Custom permissions the groups need, ensured here too (idempotent; they are declared in their models'
# Meta, but a flushed database may lack them until the next migrate). "app_label.codename" -> (model, name).
ENSURED_PERMISSIONS = {
    "payments.reprocess_webhookevent": ("webhookevent", "Can re-run processing of a PSP webhook event"),
}


def ensure_permissions() -> None:
    for label, (model_name, name) in ENSURED_PERMISSIONS.items():
        app_label, codename = label.split(".")
        content_type = ContentType.objects.get_for_model(apps.get_model(app_label, model_name))
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})


class Command(BaseCommand):
    help = "Create or update the operator permission groups (idempotent)."

    def handle(self, *args, **options):
        ensure_permissions()
        for name, (view_apps, extra, custom_apps) in GROUPS.items():
            group, _ = Group.objects.get_or_create(name=name)
            wanted = Q(content_type__app_label__in=view_apps, codename__startswith="view_")
            for label in extra:
                app_label, codename = label.split(".")
                wanted |= Q(content_type__app_label=app_label, codename=codename)
            custom = Q(content_type__app_label__in=custom_apps)
            for prefix in DEFAULT_ACTIONS:
                custom &= ~Q(codename__startswith=prefix)
            withheld = Q(pk__in=[])
            for label in WITHHELD.get(name, ()):
                app_label, codename = label.split(".")
                withheld |= Q(content_type__app_label=app_label, codename=codename)
            permissions = Permission.objects.filter(wanted | custom).exclude(withheld)
            group.permissions.set(permissions)
            self.stdout.write(f"{name}: {permissions.count()} permissions")
