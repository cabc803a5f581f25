"""The target page's light curve: the network's points beside the alerts' survey points and upper limits."""
from __future__ import annotations

import pytest

from targets.alerts.models import SurveyPhotometry
from tests.portal.factories import add_survey_points, build_portal_world, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_portal_world()
    add_survey_points(world.a_target, prefix="a")
    add_survey_points(world.b_target, offset_mag=1.0, prefix="b")  # another network's copy of the alerts
    return world


def traces_of(user, target) -> dict[str, dict]:
    response = client_for(user).get(f"/targets/{target.pk}/lightcurve.json")
    assert response.status_code == 200
    return {trace["name"]: trace for trace in response.json()["data"]}


def test_survey_detections_and_upper_limits_sit_beside_the_networks_points(world):
    traces = traces_of(world.a_viewer, world.a_target)
    assert set(traces) == {"V (calibrated)", "V (instrumental)", "ztf-g (ZTF, calibrated)",
                           "ztf-g (ZTF, upper limit)", "ztf-r (ZTF, calibrated)"}
    assert traces["ztf-g (ZTF, calibrated)"]["y"] == [4.6, 4.4]  # this network's copy, not b's (+1 mag)
    assert traces["ztf-g (ZTF, calibrated)"]["error_y"]["array"] == [0.05, 0.06]
    limits = traces["ztf-g (ZTF, upper limit)"]
    assert limits["y"] == [5.3, 5.6] and "error_y" not in limits
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
