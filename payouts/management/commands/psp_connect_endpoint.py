from django.core.management.base import BaseCommand, CommandError

from payments.psp.base import PSPError
from payouts.psp import get_payout_provider


class Command(BaseCommand):
    help = ("Register our /webhooks/psp/connect at the PSP for the connected accounts' events (payout.paid, "
            "payout.failed, ...) and print the signing secret to set as PSP_CONNECT_WEBHOOK_SECRET.")

    def add_arguments(self, parser):
        parser.add_argument("url", help="where the PSP reaches us, e.g. https://pay.example.com/webhooks/psp/connect")

    def handle(self, *args, url: str, **options):
        if not url.startswith(("https://", "http://")):
            raise CommandError("the URL must start with https:// (or http:// for the sandbox)")
        try:
            endpoint, secret = get_payout_provider().create_connect_endpoint(url=url)
        except PSPError as exc:
            raise CommandError(f"the PSP refused or did not answer: {exc}") from exc
        self.stdout.write(f"Connect endpoint {endpoint} -> {url}")
        self.stdout.write(f"PSP_CONNECT_WEBHOOK_SECRET={secret}")
