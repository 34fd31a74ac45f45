from django.core.management.base import BaseCommand

from core.services import api_client_create


class Command(BaseCommand):
    help = "Create an API client and print its key (shown once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Name of the client, e.g. the storefront's name.")

    def handle(self, *args, name: str, **options):
        client, key = api_client_create(name=name)
        self.stderr.write(f"Created API client {client.id} ({client.name}). Keep this key, it is not stored:")
        self.stdout.write(key)
