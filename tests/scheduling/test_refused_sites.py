"""A site the scheduler cannot use is refused where it is edited, and one already stored gets a
cached empty list with the reason, so its agent's requests never run a pass each."""
import pytest

from scheduling import passes as schedules
from sites.models import Site
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world
from tests.scheduling.helpers import clear_skies

pytestmark = pytest.mark.django_db
NO_SKY = [{"min_altitude_deg": 90}, {"ha_limit_east_h": 0, "ha_limit_west_h": 0}]


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    clear_skies(world.a_site)
    world.a_site.refresh_from_db()
    return world


@pytest.mark.parametrize("patch", [*NO_SKY, {"ha_limit_east_h": 1}, {"ha_limit_west_h": -1}])
def test_limits_that_leave_no_sky_are_refused(world, patch):
    response = person_client(world.a_observer).patch(f"/api/v1/sites/{world.a_site.pk}", patch, format="json")
    assert response.status_code == 400, response.content


def test_a_partial_update_is_checked_with_the_limits_in_place(world):
    Site.objects.filter(pk=world.a_site.pk).update(ha_limit_east_h=-2.0)
    client = person_client(world.a_observer)
    assert client.patch(f"/api/v1/sites/{world.a_site.pk}", {"ha_limit_west_h": 0}, format="json").status_code == 200
    Site.objects.filter(pk=world.a_site.pk).update(ha_limit_east_h=0.0, ha_limit_west_h=None)
    assert client.patch(f"/api/v1/sites/{world.a_site.pk}", {"ha_limit_west_h": 0}, format="json").status_code == 400


def test_the_model_is_where_the_rules_live(world):
    site = world.a_site
    site.ha_limit_east_h = site.ha_limit_west_h = 0.0
    with pytest.raises(Exception, match="leave no sky"):
        site.full_clean()


@pytest.mark.parametrize("stored", NO_SKY)
def test_a_refused_site_gets_a_cached_reason_not_a_pass_per_request(world, monkeypatch, stored):
    Site.objects.filter(pk=world.a_site.pk).update(**stored)  # past the validators (older rows)
    schedules.run_network_pass(world.a)
    calls = []
    original = schedules.run_network_pass
    monkeypatch.setattr(schedules, "run_network_pass", lambda *a, **k: calls.append(a) or original(*a, **k))
    client = agent_client(world.a_key)
    bodies = [client.get("/api/v1/targets").json() for _ in range(3)]
    assert calls == []
    assert all(b["targets"] == [] and "the scheduler cannot use this site" in b["reason"] for b in bodies)


@pytest.mark.parametrize("site_id", ["\u00b2", "9" * 25, "-3", "x", "1.5"])
@pytest.mark.parametrize("url", ["/api/v1/targets/last_changed", "/api/v1/targets"])
def test_a_site_id_that_is_no_row_id_is_a_400(world, url, site_id):
    response = person_client(world.a_owner).get(url, {"site_id": site_id})
    assert response.status_code == 400, response.content
    assert "site_id" in response.json()


def test_the_owner_filter_tells_nothing_about_other_networks(world):
    client = person_client(world.a_viewer)
    elsewhere = client.get("/api/v1/sites", {"owner": world.b_observer.pk})
    missing = client.get("/api/v1/sites", {"owner": 10**9})
    assert elsewhere.status_code == missing.status_code == 200
    assert elsewhere.json()["results"] == missing.json()["results"] == []
    mine = client.get("/api/v1/sites", {"owner": world.a_site.owner_id}).json()["results"]
    assert [s["id"] for s in mine] == [world.a_site.pk]
    for bad in ("9" * 25, "-3", "x"):
        response = client.get("/api/v1/sites", {"owner": bad})
        assert response.status_code == 400 and "owner" in response.json()
