"""``manage.py issue_site_key SITE_ID [--label ...]``: print a new agent key once."""
from django.core.management.base import BaseCommand, CommandError

from sites.models import Site
from sites.services import issue_site_key


class Command(BaseCommand):
    help = "Issue a new API key for a site's agent and print it (it is stored hashed and never shown again)."

    def add_arguments(self, parser):
        parser.add_argument("site_id", type=int)
        parser.add_argument("--label", default="", help="What the key is for, e.g. 'observatory PC'.")

    def handle(self, *args, site_id, label, **options):
        site = Site.objects.filter(pk=site_id).first()
        if site is None:
            raise CommandError(f"no site with id {site_id}; list them in the admin or GET /api/v1/sites")
        issued = issue_site_key(site, label=label)
        self.stdout.write(issued.plaintext)
