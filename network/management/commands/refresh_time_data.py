"""``manage.py refresh_time_data``: download fresh Earth-orientation tables, on demand.

The portal never downloads them by itself (unless ``DATAS_TIME_DATA_DOWNLOAD`` is set); the
tables bundled with astropy keep it working offline, at the accuracy ``datas_pipeline.sky.timedata``
states. Run this where there is internet to bring UT1-UTC back to full accuracy.
"""
from datas_pipeline.sky.timedata import TimeDataError, configure_time_data, refresh_time_data
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Download fresh Earth-orientation (IERS-A) and leap-second tables into astropy's cache."

    def add_arguments(self, parser):
        parser.add_argument("--status", action="store_true", help="only say which table is in use")

    def handle(self, *args, **options):
        if options["status"]:
            self.stdout.write(configure_time_data().describe())
            return
        try:
            status = refresh_time_data()
        except TimeDataError as exc:
            raise CommandError(f"could not download the Earth-orientation table: {exc}") from exc
        self.stdout.write(status.describe())
