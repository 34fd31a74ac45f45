"""Set the demo shop up at the marketplace: its sellers, products and webhook endpoint."""
from django.core.management.base import BaseCommand

from storefront.services import shop_setup


class Command(BaseCommand):
    help = "Onboard the demo shop's three sellers through the API and register its webhook endpoint."

    def add_arguments(self, parser):
        parser.add_argument("api_base", help="The marketplace's address, e.g. http://127.0.0.1:8000")
        parser.add_argument("api_key", help="The shop's API key (manage.py create_api_key)")
        parser.add_argument("--webhook-url", help="Where the shop takes webhooks (default: <api_base>/shop/webhooks)")

    def handle(self, *args, **options):
        base = options["api_base"].rstrip("/")
        config = shop_setup(api_base=base, api_key=options["api_key"],
                            webhook_url=options["webhook_url"] or f"{base}/shop/webhooks")
        self.stdout.write(f"shop ready: webhook endpoint {config.webhook_endpoint}, shop at {base}/shop/")
