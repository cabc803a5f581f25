"""GET /api/v1/lightcurve/{target_id}: per filter, time-ordered, errors, binning, isolation."""
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from observations.selectors import light_curve
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_observation

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def test_light_curve_per_filter_time_ordered(world):
    start = timezone.now() - timedelta(days=5)
    for i in (3, 1, 2):
        make_observation(world.a_target, world.a_site, observed_at=start + timedelta(hours=i), filter="V",
                         magnitude=4.0 + i / 10, magnitude_error=0.01)
    make_observation(world.a_target, world.a_site, observed_at=start, filter="B", magnitude=4.8,
                     magnitude_error=0.02)
    make_observation(world.a_target, world.a_site, filter="V", magnitude=None)  # no photometry: skipped
    response = person_client(world.a_viewer).get(f"/api/v1/lightcurve/{world.a_target.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["target_name"] == "Delta Cephei"
    assert set(body["filters"]) == {"V", "B"}
    v = body["filters"]["V"]
    assert [p["magnitude"] for p in v] == [4.1, 4.2, 4.3]
    assert all(p["error"] == 0.01 and p["n"] == 1 and p["site_id"] == world.a_site.pk for p in v)
    assert v[0]["mjd"] < v[1]["mjd"] < v[2]["mjd"]
    only_b = person_client(world.a_viewer).get(f"/api/v1/lightcurve/{world.a_target.pk}", {"filter": "B"}).json()
    assert list(only_b["filters"]) == ["B"]


def test_light_curve_bins_long_series_with_weighted_means(world):
    start = timezone.now() - timedelta(days=30)
    rng = np.random.default_rng(1)
    mags = 5 + rng.normal(0, 0.01, 100)
    for i, mag in enumerate(mags):
        make_observation(world.a_target, world.a_site, observed_at=start + timedelta(hours=i), magnitude=mag,
                         magnitude_error=0.01, filter="V")
    curve = light_curve(world.a_target, max_points=10)["V"]
    assert len(curve) == 10
    assert sum(p["n"] for p in curve) == 100
    assert all(p["error"] == pytest.approx(0.01 / np.sqrt(p["n"])) for p in curve)
    assert curve[0]["magnitude"] == pytest.approx(np.mean(mags[: curve[0]["n"]]))


def test_light_curve_failures_and_isolation(world):
    client = person_client(world.a_viewer)
    assert client.get(f"/api/v1/lightcurve/{world.b_target.pk}").status_code == 404
    assert client.get("/api/v1/lightcurve/999999").status_code == 404
    assert client.get(f"/api/v1/lightcurve/{world.a_target.pk}", {"max_points": 1}).status_code == 400
    assert client.get(f"/api/v1/lightcurve/{world.a_target.pk}", {"after": "soon"}).status_code == 400
    assert agent_client(world.a_key).get(f"/api/v1/lightcurve/{world.a_target.pk}").status_code == 403
