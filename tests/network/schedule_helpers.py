"""A known night for tests of the scheduler inside the portal (fixture ``scheduler_night`` in conftest).

``NIGHT`` is local midnight at La Palma (the factories' default site) in mid-September:
dark, with local sidereal time ~353 deg, so RA 330-30 deg at Dec +20..+60 stands high.
"""
import datetime as dt

NIGHT = dt.datetime(2025, 9, 15, 1, 10, tzinfo=dt.UTC)


def clear_skies(*sites, at: dt.datetime = NIGHT) -> None:
    """A fresh 'clear' weather report for the sites (a bulk update: no stale-marking signal)."""
    from sites.models import Site
    Site.objects.filter(pk__in=[s.pk for s in sites]).update(weather_status="clear", weather_reported_at=at)
    for site in sites:
        site.refresh_from_db()
