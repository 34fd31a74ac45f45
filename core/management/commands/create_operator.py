import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset the password of) a staff operator; prints the new password."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--superuser", action="store_true", help="Grant every permission.")
        parser.add_argument("--group", action="append", default=[],
                            help="Add to a permission group (see create_operator_groups); repeatable.")

    def handle(self, *args, username: str, superuser: bool, group: list[str], **options):
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = user.is_superuser or superuser
        user.set_password(password)
        user.save()
        for name in group:
            user.groups.add(Group.objects.get(name=name))
        self.stdout.write(password)
