"""The target page's light curve: the network's points beside the alerts' survey points and upper limits."""
from __future__ import annotations

from datetime import timedelta

import pytest
from astropy.time import Time
from django.test import Client
from django.utils import timezone

from targets.alerts.models import SurveyPhotometry
from tests.portal.factories import build_portal_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_portal_world()
    now = timezone.now()
    points = [("ztf-g", 15.2, 0.05, None), ("ztf-g", 15.4, 0.06, None), ("ztf-g", None, None, 19.8),
              ("ztf-g", None, None, 20.1), ("ztf-r", 14.9, 0.04, None)]
    for prefix in ("a", "b"):
        target = getattr(world, f"{prefix}_target")
        for i, (band, mag, err, limit) in enumerate(points):
            at = now - timedelta(days=10 - i)
            SurveyPhotometry.objects.create(
                network=target.network, target=target, source="ZTF", point_id=f"{prefix}{i}", observed_at=at,
                jd=Time(at).jd, band=band, magnitude=None if mag is None else mag + (prefix == "b"),
                magnitude_error=err, limiting_mag=limit)
    return world


def traces_of(user, target) -> dict[str, dict]:
    client = Client()
    client.force_login(user)
    response = client.get(f"/targets/{target.pk}/lightcurve.json")
    assert response.status_code == 200
    return {trace["name"]: trace for trace in response.json()["data"]}


def test_survey_detections_and_upper_limits_sit_beside_the_networks_points(world):
    traces = traces_of(world.a_viewer, world.a_target)
    assert set(traces) == {"V (calibrated)", "V (instrumental)", "ztf-g (ZTF, calibrated)",
                           "ztf-g (ZTF, upper limit)", "ztf-r (ZTF, calibrated)"}
    assert traces["ztf-g (ZTF, calibrated)"]["y"] == [15.2, 15.4]  # this network's copy, not b's (+1 mag)
    assert traces["ztf-g (ZTF, calibrated)"]["error_y"]["array"] == [0.05, 0.06]
    limits = traces["ztf-g (ZTF, upper limit)"]
    assert limits["y"] == [19.8, 20.1] and "error_y" not in limits
    assert "fainter than" in limits["hovertemplate"]
    # Told apart by shape, not colour alone: filled, open, diamond, downward triangle.
    symbols = {name: trace["marker"]["symbol"] for name, trace in traces.items()}
    assert symbols == {"V (calibrated)": "circle", "V (instrumental)": "circle-open",
                       "ztf-g (ZTF, calibrated)": "diamond", "ztf-g (ZTF, upper limit)": "triangle-down-open",
                       "ztf-r (ZTF, calibrated)": "diamond"}
    assert {traces[n]["legendgroup"] for n in symbols} == {"network", "survey"}
    # One band, one colour: the survey's g and the network's V are different bands.
    assert traces["ztf-g (ZTF, calibrated)"]["marker"]["color"] == limits["marker"]["color"]


def test_a_target_without_survey_points_has_only_the_networks_traces(world):
    SurveyPhotometry.objects.filter(target=world.a_target).delete()
    assert set(traces_of(world.a_viewer, world.a_target)) == {"V (calibrated)", "V (instrumental)"}
