"""``manage.py issue_user_token USERNAME [--label ...]``: print a personal API token once."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from network.services import issue_user_token


class Command(BaseCommand):
    help = "Issue a personal API token (Bearer dut_...) for a user and print it once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--label", default="")

    def handle(self, *args, username, label, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        self.stdout.write(issue_user_token(user, label=label).plaintext)
