"""Astropy's time and Earth-orientation data, configured in one place for the whole project.

The server, its Celery workers, the site agent, the command line and the tests all call
:func:`configure_time_data` before they transform coordinates with astropy. It makes astropy

* never download anything at run time (observatories often have no internet), unless the
  caller asks for it (``download=True``, the ``DATAS_TIME_DATA_DOWNLOAD`` setting);
* use the newest Earth-orientation table it has: the one bundled with ``astropy-iers-data``,
  or one that :func:`refresh_time_data` saved in astropy's download cache;
* keep working for years past that table's end. Astropy's default refuses predictions more
  than 30 days old (``ValueError: interpolating from IERS_Auto using predictive values that
  are more than 30.0 days old``), which stopped every site agent a month after install.
  Here UT1-UTC and polar motion are held at the table's last values instead, and one warning
  is logged, once.

Accuracy past the table: UT1-UTC stays within +-0.9 s by definition (leap seconds keep it
there), so holding its last value errs by under 1.8 s of Earth rotation, 27 arcsec of hour
angle at worst, and in practice a few tenths of a second a year (a few arcsec). Polar motion
(< 0.5 arcsec) is negligible. Altitudes therefore stay well inside the scheduler's 1 arcmin
budget; the project's own ephemeris (``pipeline/datas_pipeline/sky/ephemeris.py``) uses UTC for UT1 throughout
and needs no table at all.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

#: Where :func:`refresh_time_data` fetches from unless told otherwise (IERS, then its mirror).
DOWNLOAD_SETTING = "DATAS_TIME_DATA_DOWNLOAD"
URL_SETTING = "DATAS_IERS_A_URL"

_lock = threading.Lock()
_configured: TimeDataStatus | None = None


@dataclass(frozen=True)
class TimeDataStatus:
    """What astropy uses now. Dates are UTC."""

    source: str  # "bundled" or the URL the cached table came from
    path: str
    predictions_end: datetime  # the table's last row
    download: bool

    @property
    def degraded(self) -> bool:
        """True once the clock has passed the table's last prediction."""
        return datetime.now(UTC) > self.predictions_end

    def describe(self) -> str:
        state = ("past its end: UT1-UTC held at its last value (altitudes within ~0.5 arcmin)"
                 if self.degraded else "current")
        return (f"Earth-orientation table: {self.source} ({self.path}), predictions to "
                f"{self.predictions_end:%Y-%m-%d}, {state}; downloads "
                f"{'allowed' if self.download else 'off'}")


def download_from_environment() -> bool:
    """The ``DATAS_TIME_DATA_DOWNLOAD`` setting (``true``/``1``/``yes`` allow downloads)."""
    return os.environ.get(DOWNLOAD_SETTING, "").strip().lower() in {"1", "true", "yes", "on"}


def iers_a_urls() -> list[str]:
    """The IERS-A (finals2000A) sources, the ``DATAS_IERS_A_URL`` setting first when given."""
    from astropy.utils import iers

    override = os.environ.get(URL_SETTING, "").strip()
    return [override] if override else [iers.IERS_A_URL, iers.IERS_A_URL_MIRROR]


def _table_end(table) -> datetime:
    from astropy.time import Time

    return Time(float(table["MJD"][-1].value), format="mjd", scale="utc").to_datetime(timezone=UTC)


def _cached_tables(urls: list[str]):
    """(url, path, table) for each IERS-A source present in astropy's download cache."""
    from astropy.utils import iers
    from astropy.utils.data import download_file, is_url_in_cache

    for url in urls:
        if not is_url_in_cache(url):
            continue
        try:
            path = download_file(url, cache=True)  # a cache hit: no network
            yield url, path, iers.IERS_A.open(path)
        except Exception as exc:  # a damaged cache entry must not stop the software
            log.warning("ignoring the cached Earth-orientation table from %s: %s", url, exc)


def _silence_repeats() -> None:
    """Astropy warns on every transform past the table and on every expired leap-second list;
    :func:`configure_time_data` logs the one line that matters instead."""
    from astropy.utils.data import CacheMissingWarning
    from astropy.utils.iers import IERSDegradedAccuracyWarning

    warnings.filterwarnings("ignore", category=IERSDegradedAccuracyWarning)
    warnings.filterwarnings("ignore", category=CacheMissingWarning)  # "not in the cache": expected here
    warnings.filterwarnings("ignore", message=r".*leap-second (file|list) is expired.*")
    warnings.filterwarnings("ignore", message=r".*(Tried to get polar motions|dubious year).*")


def configure_time_data(download: bool | None = None, *, force: bool = False) -> TimeDataStatus:
    """Point astropy at the best Earth-orientation data here, offline unless ``download``.

    Idempotent and cheap after the first call (``force`` re-reads the tables, as after a
    refresh). ``download=None`` reads the ``DATAS_TIME_DATA_DOWNLOAD`` setting. With downloads
    allowed, a table older than a week is refreshed first; a failed download is logged and the
    software carries on with what it has.
    """
    global _configured
    if download is None:
        download = download_from_environment()
    with _lock:
        _silence_repeats()  # again each time: a warnings.catch_warnings() block may have dropped them
        if _configured is not None and not force and _configured.download == download:
            return _configured
        from astropy.utils import iers

        # astropy's own downloads stay off either way: refreshing is this module's job, so a
        # site with a flaky link never blocks inside a coordinate transform.
        iers.conf.auto_download = False
        iers.conf.auto_max_age = None
        iers.conf.iers_degraded_accuracy = "warn"
        if download:
            try:
                refresh_time_data(max_age_days=7.0, _reconfigure=False)
            except TimeDataError as exc:
                log.warning("could not refresh the Earth-orientation table (%s); using the one here", exc)

        best = ("bundled", iers.IERS_A_FILE, iers.IERS_A.open(iers.IERS_A_FILE))
        for candidate in _cached_tables(iers_a_urls()):
            if _table_end(candidate[2]) > _table_end(best[2]):
                best = candidate
        iers.earth_orientation_table.set(best[2])
        status = TimeDataStatus(source=best[0], path=str(best[1]), predictions_end=_table_end(best[2]),
                                download=download)
        if status.degraded and (_configured is None or not _configured.degraded or force):
            log.warning("%s. Run `manage.py refresh_time_data` or `datas-agent refresh-time-data` where "
                        "there is internet to restore full accuracy.", status.describe())
        _configured = status
        return status


class TimeDataError(RuntimeError):
    """A refresh of the Earth-orientation table failed (no network, bad file)."""


def refresh_time_data(max_age_days: float = 0.0, *, _reconfigure: bool = True) -> TimeDataStatus | None:
    """Download a fresh IERS-A table (and leap-second list) into astropy's cache, on demand.

    ``max_age_days`` > 0 skips the download when the cached copy is younger than that. The
    file is parsed before it replaces the cached copy, so a truncated download cannot break a
    working site. Raises :class:`TimeDataError` when no source answers.
    """
    from astropy.utils import iers
    from astropy.utils.data import download_file, import_file_to_cache, is_url_in_cache

    urls = iers_a_urls()
    if max_age_days > 0:
        for url in urls:
            if is_url_in_cache(url):
                path = download_file(url, cache=True)
                age_days = (datetime.now(UTC).timestamp() - os.path.getmtime(path)) / 86400.0
                if age_days < max_age_days:
                    return configure_time_data(force=True) if _reconfigure else None
    errors = []
    for url in urls:
        try:
            # Download to a temporary file and parse it before it enters the cache.
            fresh = download_file(url, cache=False, timeout=30)
            iers.IERS_A.open(fresh)
            import_file_to_cache(url, fresh, remove_original=True, replace=True)
            break
        except Exception as exc:
            errors.append(f"{url}: {exc}")
    else:
        raise TimeDataError("; ".join(errors))
    try:
        iers.LeapSeconds.auto_open([iers.IERS_LEAP_SECOND_URL])
    except Exception as exc:  # the bundled list is fine for years; say so and go on
        log.info("leap-second list not refreshed: %s", exc)
    return configure_time_data(force=True) if _reconfigure else None
