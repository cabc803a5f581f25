"""/api/v1/sites: list, create, detail, update, heartbeat, keys; roles, agents, isolation."""
import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from sites.models import Site, SiteKey
from tests.network.api_helpers import agent_client, person_client, token_client
from tests.network.factories import build_world, make_member

pytestmark = pytest.mark.django_db
URL = "/api/v1/sites"

NEW_SITE = {
    "name": "Hakos Remote 1", "latitude": -23.236, "longitude": 16.362, "elevation_m": 1843,
    "timezone": "Africa/Windhoek", "aperture_mm": 300, "focal_length_mm": 1200, "pixel_size_um": 3.76,
    "camera_model": "ZWO ASI2600MM", "filters": ["L", "R", "G", "B", "Ha"], "mount_type": "german_equatorial",
    "automation": "robotic", "horizon": [[0, 15], [90, 20], [180, 12], [270, 25]],
}


@pytest.fixture
def world():
    return build_world()


def test_list_shows_only_own_networks_sites(world):
    body = person_client(world.a_viewer).get(URL).json()
    assert [s["name"] for s in body["results"]] == ["A Observatory"]
    assert body["results"][0]["network"] == "net-a"
    assert body["results"][0]["is_online"] is False


def test_user_in_two_networks_sees_both_and_can_narrow(world):
    make_member(world.b, "viewer", user=world.a_viewer)
    client = person_client(world.a_viewer)
    assert {s["network"] for s in client.get(URL).json()["results"]} == {"net-a", "net-b"}
    narrowed = client.get(URL, {"network": "net-b"}).json()["results"]
    assert [s["network"] for s in narrowed] == ["net-b"]
    by_header = client.get(URL, HTTP_X_DATAS_NETWORK="net-a").json()["results"]
    assert [s["network"] for s in by_header] == ["net-a"]


def test_agent_sees_only_its_site(world):
    client = agent_client(world.a_key)
    assert [s["id"] for s in client.get(URL).json()["results"]] == [world.a_site.pk]
    assert client.get(f"{URL}/{world.a_site.pk}").status_code == 200
    assert client.get(f"{URL}/{world.b_site.pk}").status_code == 404


def test_detail_of_another_network_is_404(world):
    client = person_client(world.a_owner)
    assert client.get(f"{URL}/{world.a_site.pk}").status_code == 200
    assert client.get(f"{URL}/{world.b_site.pk}").status_code == 404
    assert client.get(f"{URL}/999999").status_code == 404


def test_observer_registers_a_site(world):
    response = person_client(world.a_observer).post(URL, NEW_SITE, format="json")
    assert response.status_code == 201, response.json()
    site = Site.objects.get(name="Hakos Remote 1")
    assert site.owner == world.a_observer and site.network == world.a
    assert response.json()["pixel_scale_arcsec"] == pytest.approx(0.6463, abs=1e-4)


def test_site_creation_failures(world):
    observer = person_client(world.a_observer)
    assert person_client(world.a_viewer).post(URL, NEW_SITE, format="json").status_code == 403
    assert agent_client(world.a_key).post(URL, NEW_SITE, format="json").status_code == 403
    wrong_net = observer.post(URL, NEW_SITE | {"network": "net-b"}, format="json")
    assert wrong_net.status_code == 400 and "network" in wrong_net.json()
    duplicate = observer.post(URL, NEW_SITE | {"name": "A Observatory"}, format="json")
    assert duplicate.status_code == 400 and "name" in duplicate.json()
    bad = observer.post(URL, NEW_SITE | {"latitude": 95, "timezone": "Mars/Olympus", "horizon": [[400, 10]],
                                         "filters": ["V", "V"]}, format="json")
    assert bad.status_code == 400
    assert {"latitude", "timezone", "horizon", "filters"} <= set(bad.json())
    missing = observer.post(URL, {"name": "x"}, format="json")
    assert missing.status_code == 400 and "latitude" in missing.json()


def test_member_of_two_networks_must_name_one(world):
    make_member(world.b, "observer", user=world.a_observer)
    client = person_client(world.a_observer)
    response = client.post(URL, NEW_SITE, format="json")
    assert response.status_code == 400 and "several networks" in response.json()["network"][0]
    assert client.post(URL, NEW_SITE | {"network": "net-b"}, format="json").status_code == 201


def test_owner_and_manager_edit_site_others_cannot(world):
    url = f"{URL}/{world.a_site.pk}"
    assert person_client(world.a_observer).patch(url, {"aperture_mm": 356}, format="json").status_code == 200
    assert person_client(world.a_manager).patch(url, {"camera_model": "QHY600"}, format="json").status_code == 200
    assert person_client(world.a_viewer).patch(url, {"aperture_mm": 1}, format="json").status_code == 403
    assert agent_client(world.a_key).patch(url, {"aperture_mm": 1}, format="json").status_code == 403
    assert person_client(world.b_manager).patch(url, {"aperture_mm": 1}, format="json").status_code == 404
    world.a_site.refresh_from_db()
    assert (world.a_site.aperture_mm, world.a_site.camera_model) == (356, "QHY600")


def test_heartbeat_by_agent_updates_last_seen_status_and_weather(world):
    url = f"{URL}/{world.a_site.pk}/heartbeat"
    body = {"status": "observing", "weather_status": "clear", "weather": {"cloud_cover": 0.05, "humidity": 41}}
    response = agent_client(world.a_key).put(url, body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["is_online"] is True and data["status"] == "observing" and data["weather_status"] == "clear"
    world.a_site.refresh_from_db()
    assert world.a_site.last_seen is not None and world.a_site.weather_reported_at is not None
    assert world.a_site.weather == {"cloud_cover": 0.05, "humidity": 41}
    assert agent_client(world.a_key).put(url + "/", {}, format="json").status_code == 200


def test_heartbeat_failures(world):
    url_a = f"{URL}/{world.a_site.pk}/heartbeat"
    assert agent_client(world.a_key).put(url_a, {"status": "dancing"}, format="json").status_code == 400
    assert agent_client(world.b_key).put(url_a, {}, format="json").status_code == 404
    assert person_client(world.a_viewer).put(url_a, {}, format="json").status_code == 403
    assert person_client(world.b_owner).put(url_a, {}, format="json").status_code == 404
    assert APIClient().put(url_a, {}, format="json").status_code == 401


def test_keys_issue_list_revoke(world):
    client = person_client(world.a_observer)
    url = f"{URL}/{world.a_site.pk}/keys"
    issued = client.post(url, {"label": "new PC"}, format="json")
    assert issued.status_code == 201
    plaintext = issued.json()["key"]
    assert plaintext.startswith("dsk_")
    listing = client.get(url).json()
    assert len(listing) == 2 and all("key" not in k for k in listing)
    assert agent_client(plaintext).get(f"{URL}/{world.a_site.pk}").status_code == 200
    revoked = client.post(f"{url}/{issued.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False
    refused = agent_client(plaintext).get(f"{URL}/{world.a_site.pk}")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_keys_are_guarded(world):
    url = f"{URL}/{world.a_site.pk}/keys"
    assert agent_client(world.a_key).post(url, {}, format="json").status_code == 403
    assert person_client(world.a_viewer).get(url).status_code == 403
    assert person_client(world.b_owner).get(url).status_code == 404
    b_key = SiteKey.objects.get(site=world.b_site)
    assert person_client(world.a_observer).post(f"{url}/{b_key.pk}/revoke").status_code == 404


def test_personal_token_authenticates_a_person(world):
    client = token_client(world.a_viewer)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}/{world.b_site.pk}").status_code == 404


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer dsk_0123456789ab_wrong", "Bearer xyz_1_2",
                                    "Bearer dut_000000000000_nope"])
def test_bad_bearer_headers_get_401(world, header):
    response = APIClient().get(URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_agent_requests_are_throttled(world):
    cache.clear()
    with override_settings(DATAS_AGENT_THROTTLE_RATE="3/minute"):
        client = agent_client(world.a_key)
        codes = [client.get(URL).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # Another site's key has its own budget, and people are not throttled as agents.
        assert agent_client(world.b_key).get(URL).status_code == 200
        assert all(person_client(world.a_viewer).get(URL).status_code == 200 for _ in range(5))
    cache.clear()


def test_paths_work_with_and_without_trailing_slash(world):
    client = agent_client(world.a_key)
    assert client.get(URL).status_code == 200
    assert client.get(URL + "/").status_code == 200


@pytest.mark.parametrize(("field", "value"), [("pixel_size_um", 1.5e308), ("focal_length_mm", 1e300),
                                              ("elevation_m", 1e9), ("limiting_mag", -1e12),
                                              ("ha_limit_east_h", 48.0), ("min_altitude_deg", 120.0)])
def test_absurd_physical_values_are_refused_and_the_site_stays_readable(world, field, value):
    """Found by fuzzing the OpenAPI schema: a 1e308 um pixel was stored, its pixel scale became
    infinite, and every later read of the site was a 500."""
    url = f"{URL}/{world.a_site.pk}"
    client = person_client(world.a_manager)
    response = client.patch(url, {field: value}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert client.get(url).status_code == 200
