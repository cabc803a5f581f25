"""Read-side queries for observations: light curves."""
from __future__ import annotations

import math
from datetime import UTC, datetime

from django.db.models import Avg, Case, Count, F, FloatField, Func, Max, Min, Q, Sum, Value, When
from django.db.models.functions import Floor, Least

from observations.models import Observation
from targets.models import Target

# What a live agent writes as the photometry method of magnitudes not tied to a catalogue.
INSTRUMENTAL_METHOD = "instrumental"
UNIX_EPOCH_MJD = 40587.0  # 1970-01-01T00:00 UTC


def light_curve(target: Target, *, filter_name: str | None = None, after: datetime | None = None,
                before: datetime | None = None, max_points: int = 2000,
                bin_minutes: float | None = None, instrumental: bool | None = None) -> dict[str, list[dict]]:
    """A target's photometry per filter, time-ordered, with errors.

    Parameters
    ----------
    target : Target
        Whose light curve.
    filter_name : str, optional
        Only this filter.
    after, before : datetime, optional
        UTC bounds on ``observed_at``.
    max_points : int
        Per filter at most this many points: longer series are averaged in equal time bins
        (inverse-variance weighted when errors are known) so plots never fetch every datum.
    bin_minutes : float, optional
        Average the points in fixed bins of this many minutes first (e.g. a transit's
        frames into 5-minute points); ``max_points`` still applies afterwards.
    instrumental : bool, optional
        True: only instrumental magnitudes (``photometry_method == "instrumental"``, as live
        agents report them); False: only calibrated ones; None: both, unmarked.

    Returns
    -------
    dict
        ``{filter: [{"t", "mjd", "magnitude", "error", "n", "site_id", "airmass"}, ...]}``;
        ``n`` is the number of observations in a point, ``site_id`` is None for a multi-site
        bin, ``airmass`` the mean of the known airmasses (None when none is known).
    """
    rows = Observation.objects.filter(target=target, magnitude__isnull=False)
    if filter_name:
        rows = rows.filter(filter=filter_name)
    if instrumental is not None:
        is_instrumental = Q(photometry_method=INSTRUMENTAL_METHOD)
        rows = rows.filter(is_instrumental) if instrumental else rows.exclude(is_instrumental)
    if after:
        rows = rows.filter(observed_at__gte=after)
    if before:
        rows = rows.filter(observed_at__lte=before)
    # Long series are averaged in the database (a few queries whatever their length): reading
    # 20,000 rows into Python and binning them there cost ~0.5 s.
    spans = list(rows.values("filter").annotate(n=Count("id"), first=Min(EPOCH), last=Max(EPOCH))
                 .order_by("filter"))
    raw = [s["filter"] for s in spans if s["n"] <= max_points and not bin_minutes]
    curves = _raw_points(rows.filter(filter__in=raw)) if raw else {}
    binned = [s for s in spans if s["filter"] not in raw]
    if bin_minutes and binned:
        fixed = _binned_points(rows, {s["filter"]: (s["first"], bin_minutes * 60.0) for s in binned}, None)
        curves.update({name: points for name, points in fixed.items() if len(points) <= max_points})
        binned = [s for s in binned if s["filter"] not in curves]
    if binned:
        bins = {s["filter"]: (s["first"], max(s["last"] - s["first"], 1e-6) / max_points) for s in binned}
        curves.update(_binned_points(rows, bins, max_points))
    return {s["filter"]: curves[s["filter"]] for s in spans}


class EpochSeconds(Func):
    """POSIX seconds (UTC, float) of a datetime column, computed in the database."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        # date_part() is float8 already; EXTRACT() computes a numeric, ~5x slower over 20,000 rows.
        return self.as_sql(compiler, connection, template="date_part('epoch', %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # julianday() keeps milliseconds: enough for a bin centre.
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
                           **extra)


EPOCH = EpochSeconds("observed_at")


def _mjd(epoch_s: float) -> float:
    """MJD (UTC) from POSIX seconds; the day fraction ignores a leap second (< 12 microdays)."""
    return epoch_s / 86400.0 + UNIX_EPOCH_MJD


def _raw_points(rows) -> dict[str, list[dict]]:
    curves: dict[str, list[dict]] = {}
    for name, t, mag, err, site, am in rows.order_by("filter", "observed_at").values_list(
            "filter", "observed_at", "magnitude", "magnitude_error", "site_id", "airmass"):
        curves.setdefault(name, []).append({"t": t, "mjd": _mjd(t.timestamp()), "magnitude": mag, "error": err,
                                            "n": 1, "site_id": site, "airmass": am})
    return curves


def _binned_points(rows, bins: dict[str, tuple[float, float]], max_bins: int | None) -> dict[str, list[dict]]:
    """Per filter, the points averaged in time bins of (first epoch, width in seconds) each.

    A bin's magnitude is the inverse-variance weighted mean when every error in it is known
    and positive, else the plain mean with the standard error of the mean (None for one point).
    ``max_bins`` folds the last instant (exactly at the end) into the last bin.
    """
    first = Case(*[When(filter=name, then=Value(start)) for name, (start, _) in bins.items()],
                 output_field=FloatField())
    width = Case(*[When(filter=name, then=Value(size)) for name, (_, size) in bins.items()],
                 output_field=FloatField())
    index = Floor((EPOCH - first) / width)
    if max_bins is not None:
        index = Least(index, Value(float(max_bins - 1)))
    weight = Case(When(magnitude_error__gt=0, then=1.0 / (F("magnitude_error") * F("magnitude_error"))),
                  output_field=FloatField())
    grouped = (rows.filter(filter__in=list(bins)).annotate(bin=index).values("filter", "bin")
               .annotate(n=Count("id"), weighted=Count("id", filter=Q(magnitude_error__gt=0)), t=Avg(EPOCH),
                         sm=Sum("magnitude"), smm=Sum(F("magnitude") * F("magnitude")), sw=Sum(weight),
                         swm=Sum(weight * F("magnitude")), airmass=Avg("airmass"), site_lo=Min("site_id"),
                         site_hi=Max("site_id"))
               .order_by("filter", "bin"))
    curves: dict[str, list[dict]] = {}
    for row in grouped:
        n = row["n"]
        if row["weighted"] == n:
            magnitude, error = row["swm"] / row["sw"], math.sqrt(1.0 / row["sw"])
        else:
            magnitude = row["sm"] / n
            error = math.sqrt(max(row["smm"] / n - magnitude**2, 0.0) / n) if n > 1 else None
        curves.setdefault(row["filter"], []).append({
            "t": datetime.fromtimestamp(row["t"], UTC), "mjd": _mjd(row["t"]), "magnitude": magnitude,
            "error": error, "n": n, "site_id": row["site_lo"] if row["site_lo"] == row["site_hi"] else None,
            "airmass": row["airmass"]})
    return curves
