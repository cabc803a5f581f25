"""A known night for tests of the scheduler inside the portal (fixture ``scheduler_night`` in conftest).

``NIGHT`` is local midnight at La Palma (the factories' default site) in mid-September:
dark, with local sidereal time ~353 deg, so RA 330-30 deg at Dec +20..+60 stands high.
"""
import datetime as dt

from sites.services import forget_site_keys

NIGHT = dt.datetime(2025, 9, 15, 1, 10, tzinfo=dt.UTC)


def clear_skies(*sites, at: dt.datetime = NIGHT) -> None:
    """A fresh 'clear' weather report for the sites (a bulk update: no stale-marking signal)."""
    from sites.models import Site
    Site.objects.filter(pk__in=[s.pk for s in sites]).update(weather_status="clear", weather_reported_at=at)
    forget_site_keys(site_ids=[s.pk for s in sites])
    for site in sites:
        site.refresh_from_db()


def same_sky_in_the_dark(latitude: float, longitude: float, when: dt.datetime | None = None,
                         sun_below: float = -18.0) -> dt.datetime:
    """A later time when the site is dark, the Moon is far from the zenith, and the local
    sidereal time equals that at ``when`` (default now): whole sidereal days later.

    For tests that place targets "overhead now" on the real clock while the scheduler needs a
    night (freeze ``scheduling.passes._now`` at the result).
    """
    import numpy as np
    from datas_pipeline.sky.visibility import moon_altaz, sun_altaz

    start = (when or dt.datetime.now(dt.UTC)).timestamp()
    times = start + np.arange(1, 400) * 86400.0 / 1.00273790935
    sun = sun_altaz(latitude, longitude, times)[0][0]
    moon = moon_altaz(latitude, longitude, times)[0][0]
    k = int(np.flatnonzero((sun < sun_below) & (moon < 50.0))[0])
    return dt.datetime.fromtimestamp(float(times[k]), dt.UTC)
