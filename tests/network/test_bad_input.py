"""Input found by fuzzing the OpenAPI schema that reached the database as a 500: now a 400 that
says what is wrong. Each case runs on both backends; PostgreSQL is where they used to fail."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from network.api import find_nul
from observations.models import Observation
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_observation
from tests.observations.test_api import payload
from tests.sites.test_api import NEW_SITE

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def test_find_nul_names_the_place():
    assert find_nul({"a": [1, {"b": "x\x00y"}]}) == "a[1].b"
    assert find_nul({"k\x00": 1}) == "k\x00"
    assert find_nul("\x00") == "(the body)"
    assert find_nul({"a": ["fine", 2.5, None, True]}) is None


def test_a_nul_anywhere_in_json_is_a_400_that_says_where(world):
    agent = agent_client(world.a_key)
    beat = agent.put(f"/api/v1/sites/{world.a_site.pk}/heartbeat",
                     {"status": "idle", "weather": {"sky": "clear\x00"}}, format="json")
    assert beat.status_code == 400 and "weather.sky" in beat.json()["detail"]
    body = payload(world.a_target)
    body["fits_header"]["OBJECT"] = "Delta\x00Cep"
    upload = agent.post("/api/v1/observations", body, format="json")
    assert upload.status_code == 400 and "fits_header.OBJECT" in upload.json()["detail"]
    assert not Observation.objects.filter(observation_id=body["observation_id"]).exists()
    manager = person_client(world.a_manager)
    target = manager.patch(f"/api/v1/targets/{world.a_target.pk}", {"metadata": {"note\x00": 1}}, format="json")
    assert target.status_code == 400 and "NUL" in target.json()["detail"]
    alert = manager.post("/api/v1/alerts", {"source": "ZTF", "external_id": "ZTF26x", "ra_deg": 10, "dec_deg": 20,
                                            "payload": {"x": ["\x00"]}}, format="json")
    assert alert.status_code == 400 and "payload.x[0]" in alert.json()["detail"]


def test_a_time_zone_name_too_long_for_a_file_is_a_field_error(world):
    response = person_client(world.a_observer).post("/api/v1/sites", NEW_SITE | {"timezone": "Europe/" + "x" * 300},
                                                    format="json")
    assert response.status_code == 400 and "IANA time zone" in str(response.json()["timezone"])


@pytest.mark.parametrize("offset", ["+20:00", "-23:59", "+15:59"])
def test_any_iso_offset_in_after_and_before_is_accepted(world, offset):
    make_observation(world.a_target, world.a_site, observed_at=timezone.now() - timedelta(days=1))
    client = person_client(world.a_viewer)
    for path in ("/api/v1/observations", "/api/v1/frames"):
        response = client.get(path, {"after": f"2000-01-01T00:00:00{offset}", "before": f"2100-01-01T00:00:00{offset}"})
        assert response.status_code == 200, (path, response.content[:300])
    assert client.get("/api/v1/observations", {"after": f"2000-01-01T00:00:00{offset}"}).json()["count"] == 1


def test_an_offset_beyond_postgresqls_range_means_the_same_instant_in_utc(world):
    # 2000-01-02T04:00+20:00 is 2000-01-01T08:00Z: an observation at 06:00Z is before it.
    early = make_observation(world.a_target, world.a_site, observed_at=datetime(2000, 1, 1, 6, tzinfo=UTC))
    client = person_client(world.a_viewer)
    later = client.get("/api/v1/observations", {"after": "2000-01-02T04:00:00+20:00",
                                                "before": "2000-01-02T12:00:00+20:00"}).json()
    assert later["count"] == 0
    around = client.get("/api/v1/observations", {"after": "2000-01-02T01:00:00+20:00",
                                                 "before": "2000-01-02T03:00:00+20:00"}).json()
    assert [o["observation_id"] for o in around["results"]] == [str(early.observation_id)]
