"""Read side of alert ingest: a target's survey light curve."""
from __future__ import annotations

from django.db.models import Count

from network.models import Network
from targets.alerts.models import AlertFeed, SurveyPhotometry
from targets.models import Alert, Target


def alert_health(network: Network) -> dict:
    """For the portal: the network's alerts per status, and every feed's health line."""
    counts = (Alert.objects.filter(network=network).values("status").annotate(n=Count("id"))
              .order_by("status").values_list("status", "n"))
    return {"alert_counts": [(status, n) for status, n in counts], "alert_feeds": list(AlertFeed.objects.all())}


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
