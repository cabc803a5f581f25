"""Read side of alert ingest: a target's survey light curve."""
from __future__ import annotations

from targets.alerts.models import SurveyPhotometry
from targets.models import Target


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
