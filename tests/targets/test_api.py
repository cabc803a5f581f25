"""/api/v1/targets, /api/v1/campaigns, /api/v1/alerts: success, failure, roles, isolation."""
from datetime import timedelta

import pytest

from targets.models import Alert, Target
from tests.network.api_helpers import agent_client, person_client, token_client
from tests.network.factories import build_world, make_campaign, make_observation, make_site, make_target
from tests.scheduling.helpers import clear_skies

pytestmark = pytest.mark.django_db
TARGETS, CAMPAIGNS, ALERTS = "/api/v1/targets", "/api/v1/campaigns", "/api/v1/alerts"


@pytest.fixture
def world():
    return build_world()


# --- targets -----------------------------------------------------------------------------

def test_agent_gets_its_sites_ranked_list(world, scheduler_night):
    clear_skies(world.a_site)
    make_target(world.a, name="Never observed", priority=2.0, ra_deg=10, dec_deg=40)
    make_target(world.a, name="Too far south", priority=9.0, ra_deg=10, dec_deg=-80)
    make_target(world.a, name="Inactive", priority=9.0, ra_deg=10, dec_deg=40, is_active=False)
    make_target(world.a, name="Expired", priority=9.0, ra_deg=10, dec_deg=40,
                expires_at=scheduler_night - timedelta(days=1))
    response = agent_client(world.a_key).get(TARGETS, {"count": 5})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["site_id"] == world.a_site.pk and body["network"] == "net-a"
    names = [t["name"] for t in body["targets"]]
    assert names == ["Never observed", "Delta Cephei"]
    assert [t["rank"] for t in body["targets"]] == [1, 2]
    assert body["targets"][0]["score"] >= body["targets"][1]["score"]


def test_ranked_list_filters(world, scheduler_night):
    clear_skies(world.a_site)
    low = make_target(world.a, name="Low", priority=0.1, ra_deg=10, dec_deg=40)
    client = agent_client(world.a_key)
    assert "Low" not in [t["name"] for t in client.get(TARGETS, {"priority_min": 0.5}).json()["targets"]]
    campaign = make_campaign(world.a, [low], name="Only low")
    only = client.get(TARGETS, {"campaign": campaign.pk}).json()["targets"]
    assert [t["name"] for t in only] == ["Low"]
    assert len(client.get(TARGETS, {"count": 1}).json()["targets"]) == 1


def test_ranked_list_failures(world):
    client = agent_client(world.a_key)
    assert client.get(TARGETS, {"site_id": world.b_site.pk}).status_code == 400
    foreign_campaign = client.get(TARGETS, {"campaign": world.b_campaign.pk})
    assert foreign_campaign.status_code == 400 and "campaign" in foreign_campaign.json()
    bad_count = client.get(TARGETS, {"count": 0})
    assert bad_count.status_code == 400 and "count" in bad_count.json()
    assert client.get(TARGETS, {"priority_min": "high"}).status_code == 400


def test_person_asks_ranked_list_for_a_visible_site_only(world):
    client = person_client(world.a_viewer)
    assert client.get(TARGETS, {"site_id": world.a_site.pk}).status_code == 200
    assert client.get(TARGETS, {"site_id": world.b_site.pk}).status_code == 404


def test_human_list_filters_and_isolation(world):
    make_target(world.a, name="M 31", ra_deg=10.6847, dec_deg=41.2690, target_type="deep_sky", magnitude=3.4)
    client = person_client(world.a_viewer)
    body = client.get(TARGETS).json()
    assert {t["name"] for t in body["results"]} == {"Delta Cephei", "M 31"}
    assert all(t["network"] == "net-a" for t in body["results"])
    deep = client.get(TARGETS, {"target_type": "deep_sky"}).json()["results"]
    assert [t["name"] for t in deep] == ["M 31"]
    assert client.get(TARGETS, {"name": "m31"}).json()["results"][0]["name"] == "M 31"
    assert client.get(TARGETS, {"campaign": world.a_campaign.pk}).json()["count"] == 1
    assert client.get(TARGETS, {"target_type": "planet"}).status_code == 400
    assert client.get(f"{TARGETS}/{world.b_target.pk}").status_code == 404
    assert client.get(f"{TARGETS}/{world.a_target.pk}").json()["coverage"]["total_observations"] == 0


def test_human_cone_search(world):
    make_target(world.a, name="Wrap", ra_deg=359.99, dec_deg=0.0)
    make_target(world.a, name="Wrap2", ra_deg=0.01, dec_deg=0.0)
    make_target(world.b, name="Other net", ra_deg=0.0, dec_deg=0.0)
    client = person_client(world.a_viewer)
    results = client.get(TARGETS, {"ra": 0, "dec": 0, "radius_deg": 0.05}).json()["results"]
    assert sorted(t["name"] for t in results) == ["Wrap", "Wrap2"]
    assert all(t["separation_deg"] == pytest.approx(0.01, abs=1e-6) for t in results)
    half = client.get(TARGETS, {"ra": 0, "dec": 0})
    assert half.status_code == 400 and set(half.json()) == {"radius_deg"}
    assert client.get(TARGETS, {"ra": 0, "dec": 0, "radius_deg": -1}).status_code == 400


def test_manager_creates_and_updates_a_target(world):
    client = person_client(world.a_manager)
    body = {"name": "RR Lyrae", "aliases": ["HD 182989", "RR Lyr"], "ra_deg": 291.3663, "dec_deg": 42.7844,
            "target_type": "variable", "magnitude": 7.5, "priority": 2, "cadence_hours": 2,
            "requirements": {"filters": ["V", "B"], "exposure_sec": 30, "total_hours": 4,
                             "time_windows": [{"start": "2026-12-01T20:00:00Z", "end": "2026-12-02T02:00:00Z",
                                               "priority_boost": 3}]}}
    response = client.post(TARGETS, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["aliases"] == ["HD 182989", "RR Lyr"]
    assert data["requirements"]["filters"] == ["V", "B"] and data["requirements"]["total_hours"] == 4
    target = Target.objects.get(pk=data["id"])
    assert target.network == world.a and target.exposure_sec == 30
    assert client.get(TARGETS, {"name": "rr-lyr"}).json()["results"][0]["id"] == target.pk
    updated = client.patch(f"{TARGETS}/{target.pk}", {"priority": 5, "aliases": ["RR Lyr"]}, format="json")
    assert updated.status_code == 200 and updated.json()["aliases"] == ["RR Lyr"]
    assert updated.json()["priority"] == 5


def test_target_write_failures(world):
    manager = person_client(world.a_manager)
    ok = {"name": "New", "ra_deg": 10, "dec_deg": 10}
    assert person_client(world.a_observer).post(TARGETS, ok, format="json").status_code == 403
    assert agent_client(world.a_key).post(TARGETS, ok, format="json").status_code == 403
    taken = manager.post(TARGETS, ok | {"name": "delta cephei"}, format="json")
    assert taken.status_code == 400 and "already" in taken.json()["name"][0]
    bad = manager.post(TARGETS, {"name": "X", "ra_deg": 360, "dec_deg": -91,
                                 "requirements": {"time_windows": [{"start": "2026-01-02T00:00:00Z",
                                                                    "end": "2026-01-01T00:00:00Z"}]}},
                       format="json")
    assert bad.status_code == 400 and {"ra_deg", "dec_deg", "requirements"} <= set(bad.json())
    assert person_client(world.a_viewer).patch(f"{TARGETS}/{world.a_target.pk}", {"priority": 9},
                                               format="json").status_code == 403
    assert person_client(world.b_manager).patch(f"{TARGETS}/{world.a_target.pk}", {"priority": 9},
                                                format="json").status_code == 404


# --- campaigns ---------------------------------------------------------------------------

def test_campaign_list_and_detail_with_progress(world):
    second = make_target(world.a, name="Eta Aquilae", ra_deg=298.1182, dec_deg=1.0057, min_observations=2)
    world.a_campaign.memberships.create(target=second)
    world.a_campaign.coverage_sites = 2
    world.a_campaign.save()
    other_site = make_site(world.a, name="Second site")
    make_observation(world.a_target, world.a_site)
    make_observation(world.a_target, other_site)
    make_observation(second, world.a_site)
    client = person_client(world.a_viewer)
    listing = client.get(CAMPAIGNS).json()["results"]
    assert [(c["name"], c["target_count"]) for c in listing] == [("Cepheids", 2)]
    detail = client.get(f"{CAMPAIGNS}/{world.a_campaign.pk}").json()
    assert detail["progress"] == {"targets_total": 2, "targets_complete": 1, "observations": 3,
                                  "fraction": pytest.approx(0.75)}
    by_name = {t["name"]: t for t in detail["targets"]}
    assert by_name["Delta Cephei"]["fraction"] == 1.0
    assert by_name["Eta Aquilae"]["fraction"] == 0.5  # 1 of 2 observations, 1 of 2 sites


def test_campaign_isolation_and_agents(world):
    client = person_client(world.a_viewer)
    assert client.get(f"{CAMPAIGNS}/{world.b_campaign.pk}").status_code == 404
    assert [c["id"] for c in client.get(CAMPAIGNS).json()["results"]] == [world.a_campaign.pk]
    assert agent_client(world.a_key).get(CAMPAIGNS).status_code == 403


# --- alerts ------------------------------------------------------------------------------

ALERT = {"source": "ZTF", "external_id": "ZTF26aaabcde", "ra_deg": 337.29295, "dec_deg": 58.41525,
         "error_radius_arcsec": 1.5, "alert_type": "variable", "priority": 2, "payload": {"magpsf": 4.3}}


def test_alert_post_links_nearest_target_and_is_idempotent(world):
    client = token_client(world.a_manager)
    first = client.post(ALERTS, ALERT, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["target_id"] == world.a_target.pk and first.json()["network"] == "net-a"
    again = client.post(ALERTS, ALERT | {"priority": 9}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Alert.objects.count() == 1


def test_alert_can_create_a_transient_target(world):
    body = ALERT | {"external_id": "ZTF26zz", "ra_deg": 150.0, "dec_deg": 2.2, "create_target": True}
    response = person_client(world.a_owner).post(ALERTS, body, format="json")
    assert response.status_code == 201
    target = Target.objects.get(pk=response.json()["target_id"])
    assert target.target_type == "transient" and target.name == "ZTF ZTF26zz" and target.network == world.a
    unmatched = person_client(world.a_owner).post(ALERTS, body | {"external_id": "x2", "create_target": False},
                                                  format="json")
    assert unmatched.status_code == 201 and unmatched.json()["target_id"] == target.pk


def test_alert_failures(world):
    assert person_client(world.a_observer).post(ALERTS, ALERT, format="json").status_code == 403
    assert agent_client(world.a_key).post(ALERTS, ALERT, format="json").status_code == 403
    bad = person_client(world.a_manager).post(ALERTS, ALERT | {"source": "Nope", "ra_deg": 400, "dec_deg": 91},
                                              format="json")
    assert bad.status_code == 400 and {"source", "ra_deg", "dec_deg"} <= set(bad.json())
    foreign = person_client(world.a_manager).post(ALERTS, ALERT | {"network": "net-b"}, format="json")
    assert foreign.status_code == 400 and "network" in foreign.json()
    # An error circle wider than the sky cannot be cross-matched (found by fuzzing: was a 500).
    huge = person_client(world.a_manager).post(ALERTS, ALERT | {"error_radius_arcsec": 6e16}, format="json")
    assert huge.status_code == 400 and "error_radius_arcsec" in huge.json()


def test_alert_never_links_another_networks_target(world):
    response = person_client(world.b_manager).post(ALERTS, ALERT, format="json")
    assert response.json()["target_id"] == world.b_target.pk
    listing = person_client(world.a_viewer).get(ALERTS).json()
    assert listing["count"] == 0
    assert person_client(world.a_viewer).get(f"{ALERTS}/{response.json()['id']}").status_code == 404


def test_target_create_in_another_network_is_refused(world):
    response = person_client(world.a_manager).post(TARGETS, {"name": "X", "ra_deg": 1, "dec_deg": 1,
                                                             "network": "net-b"}, format="json")
    assert response.status_code == 400 and "network" in response.json()
    assert not Target.objects.filter(name="X").exists()
