"""``manage.py load_demo``: build (or refresh) the demo networks; safe to run any number of times."""
from django.core.management.base import BaseCommand

from demo.services import DEMO_PASSWORD, DEMO_USERNAME, load_demo


class Command(BaseCommand):
    help = "Load the demo: two networks, real sites and targets, campaigns and observations (idempotent)."

    def handle(self, *args, **options):
        report = load_demo(progress=lambda message: self.stdout.write(f"  {message}"))
        created = ", ".join(f"{n} {what}" for what, n in report.created.items()) or "nothing new"
        self.stdout.write(self.style.SUCCESS(f"Demo ready ({created})."))
        for site, key in report.new_keys:
            self.stdout.write(f"  agent key for {site}: {key}")
        if report.new_keys:
            self.stdout.write("  (keys are stored hashed: copy them now; issue more with manage.py issue_site_key)")
        self.stdout.write(self.style.SUCCESS(
            f"Log in at http://127.0.0.1:8000/ as {DEMO_USERNAME!r} with password {DEMO_PASSWORD!r} "
            "(owner of both demo networks; the admin is at /admin/), or as a site's observer "
            "(obs_la, obs_nerpio, ...: the login page lists them) with the same password."))
