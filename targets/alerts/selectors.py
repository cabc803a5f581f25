"""Read side of alert ingest: a target's survey light curve."""
from __future__ import annotations

from django.db.models import Count

from network.models import Network
from targets.alerts.models import AlertFeed, SurveyPhotometry
from targets.models import Alert, Target


def alert_counts(network: Network) -> list[tuple[str, int]]:
    """The network's alerts per status, e.g. ``[("new", 12), ("observed", 3)]``."""
    counts = (Alert.objects.filter(network=network).values("status").annotate(n=Count("id"))
              .order_by("status").values_list("status", "n"))
    return [(status, n) for status, n in counts]


def feed_health_lines(*, full: bool) -> list[str]:
    """Every alert feed's health. Feeds serve all the server's networks: ``full`` (counts and
    last error, which mix every network's traffic) is for the server's staff only."""
    return [feed.health_line() if full else feed.status_line() for feed in AlertFeed.objects.all()]


def survey_light_curve(target: Target, max_points: int = 2000) -> dict[str, list[dict]]:
    """The survey points of a target per band, time-ordered (the latest ``max_points`` per band).

    Detections have ``magnitude`` and ``magnitude_error``; upper limits only ``limiting_mag``.
    """
    curves: dict[str, list[dict]] = {}
    rows = (SurveyPhotometry.objects.filter(target=target).order_by("band", "-jd")
            .values("source", "band", "jd", "observed_at", "magnitude", "magnitude_error", "limiting_mag"))
    for row in rows:
        points = curves.setdefault(f"{row['source']}:{row['band']}", [])
        if len(points) < max_points:
            points.append(row)
    return {band: points[::-1] for band, points in curves.items()}
