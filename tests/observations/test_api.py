"""POST/GET /api/v1/observations: idempotent uploads, per-field validation, tenant isolation."""
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from observations.models import Observation
from targets.models import Target
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_observation, make_site

pytestmark = pytest.mark.django_db
URL = "/api/v1/observations"


@pytest.fixture
def world():
    return build_world()


def payload(target, **overrides):
    body = {
        "observation_id": str(uuid.uuid4()),
        "target_id": target.pk,
        "observed_at": (timezone.now() - timedelta(hours=2)).isoformat(),
        "exposure_sec": 60,
        "filter": "V",
        "airmass": 1.31,
        "seeing_arcsec": 2.4,
        "photometry": {"magnitude": 4.12, "error": 0.011, "method": "ensemble",
                       "comparison_stars": [{"name": "HD 213307", "magnitude": 5.1}]},
        "quality_flags": [],
        "fits_header": {"EXPTIME": 60.0, "FILTER": "V"},
        "image_ref": "frames/2026/abc.fits",
    }
    body.update(overrides)
    return body


def test_agent_uploads_one_observation(world):
    body = payload(world.a_target)
    response = agent_client(world.a_key).post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["observation_id"] == body["observation_id"]
    assert data["site_id"] == world.a_site.pk and data["network"] == "net-a"
    assert data["photometry"]["magnitude"] == 4.12
    assert data["position"] == {"ra_deg": world.a_target.ra_deg, "dec_deg": world.a_target.dec_deg,
                                "source": "target", "error_arcsec": None, "measured": False}
    stored = Observation.objects.get(observation_id=body["observation_id"])
    assert stored.submitted_with_key.site == world.a_site
    world.a_target.refresh_from_db()
    assert (world.a_target.total_observations, world.a_target.unique_sites,
            world.a_target.observations_last_7d) == (1, 1, 1)


def test_retry_returns_the_stored_record_and_creates_nothing(world):
    client = agent_client(world.a_key)
    body = payload(world.a_target)
    first = client.post(URL, body, format="json")
    # The retry differs (the agent recomputed something): the stored record wins.
    retry = client.post(URL, body | {"photometry": {"magnitude": 9.99}}, format="json")
    assert first.status_code == 201 and retry.status_code == 200
    assert retry.json() == first.json()
    assert Observation.objects.count() == 1


def test_batch_upload_with_repeats_is_idempotent(world):
    client = agent_client(world.a_key)
    bodies = [payload(world.a_target) for _ in range(3)]
    first = client.post(URL, bodies, format="json")
    assert first.status_code == 201
    assert first.json()["created"] == 3 and first.json()["existing"] == 0
    again = client.post(URL, [*bodies, payload(world.a_target)], format="json")
    assert again.status_code == 201
    assert (again.json()["created"], again.json()["existing"]) == (1, 3)
    assert [r["observation_id"] for r in again.json()["results"][:3]] == [b["observation_id"] for b in bodies]
    assert Observation.objects.count() == 4
    repeat_all = client.post(URL, bodies, format="json")
    assert repeat_all.status_code == 200 and repeat_all.json()["created"] == 0


def test_duplicate_ids_inside_one_batch_store_once(world):
    body = payload(world.a_target)
    response = agent_client(world.a_key).post(URL, [body, body], format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 1 and response.json()["existing"] == 1
    assert Observation.objects.count() == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("exposure_sec", 0, "greater than 0"),
    ("exposure_sec", -5, "greater than 0"),
    ("airmass", 0.9, "at least 1"),
    ("filter", "Halpha", "not one of this site's filters"),
    ("observed_at", "2999-01-01T00:00:00Z", "in the future"),
    ("observed_at", "yesterday", "format"),
    ("observation_id", "not-a-uuid", "UUID"),
    ("target_id", 999999, "no target"),
])
def test_each_invalid_field_gets_its_own_message(world, field, value, message):
    response = agent_client(world.a_key).post(URL, payload(world.a_target, **{field: value}), format="json")
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert Observation.objects.count() == 0


@pytest.mark.parametrize(("astrometry", "field"), [
    ({"ra_deg": 360.0, "dec_deg": 10}, "ra_deg"),
    ({"ra_deg": -0.1, "dec_deg": 10}, "ra_deg"),
    ({"ra_deg": 10, "dec_deg": 90.5}, "dec_deg"),
    ({"ra_deg": 10, "dec_deg": -91}, "dec_deg"),
])
def test_astrometry_range_is_checked(world, astrometry, field):
    response = agent_client(world.a_key).post(URL, payload(world.a_target, astrometry=astrometry), format="json")
    assert response.status_code == 400
    assert field in response.json()["astrometry"]


def test_measured_astrometry_becomes_the_position(world):
    body = payload(world.a_target, astrometry={"ra_deg": 337.2931, "dec_deg": 58.4150, "error_arcsec": 0.4})
    response = agent_client(world.a_key).post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["position"] == {"ra_deg": 337.2931, "dec_deg": 58.415, "source": "astrometry",
                                           "error_arcsec": 0.4, "measured": True}


def test_invalid_item_in_batch_stores_nothing_and_points_at_it(world):
    bodies = [payload(world.a_target), payload(world.a_target, airmass=0.5), payload(world.a_target)]
    response = agent_client(world.a_key).post(URL, bodies, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0] == {} and "airmass" in body["errors"][1] and body["errors"][2] == {}
    assert "1 of 3" in body["detail"]
    assert Observation.objects.count() == 0


@pytest.mark.parametrize("bad", [[], "text", [1, 2], None])
def test_malformed_bodies_are_rejected(world, bad):
    response = agent_client(world.a_key).post(URL, bad, format="json")
    assert response.status_code == 400


def test_target_of_another_network_is_unknown(world):
    response = agent_client(world.a_key).post(URL, payload(world.b_target), format="json")
    assert response.status_code == 400
    assert "target_id" in response.json()
    assert Observation.objects.count() == 0


def test_agent_cannot_submit_for_another_site(world):
    other = make_site(world.a, name="Other A site")
    response = agent_client(world.a_key).post(URL, payload(world.a_target, site_id=other.pk), format="json")
    assert response.status_code == 400 and "site_id" in response.json()


def test_observation_id_of_another_site_is_not_returned(world):
    body = payload(world.b_target)
    assert agent_client(world.b_key).post(URL, body, format="json").status_code == 201
    response = agent_client(world.a_key).post(URL, body | {"target_id": world.a_target.pk}, format="json")
    assert response.status_code == 400
    assert "another site" in response.json()["observation_id"][0]
    assert "net-b" not in response.content.decode()


def test_people_submit_for_their_own_sites_and_managers_for_any(world):
    body = payload(world.a_target, site_id=world.a_site.pk)
    assert person_client(world.a_observer).post(URL, body, format="json").status_code == 201
    manager_body = payload(world.a_target, site_id=world.a_site.pk)
    assert person_client(world.a_manager).post(URL, manager_body, format="json").status_code == 201
    viewer = person_client(world.a_viewer).post(URL, payload(world.a_target, site_id=world.a_site.pk), format="json")
    assert viewer.status_code == 403
    missing_site = person_client(world.a_observer).post(URL, payload(world.a_target), format="json")
    assert missing_site.status_code == 400 and "site_id" in missing_site.json()
    foreign = person_client(world.a_manager).post(URL, payload(world.b_target, site_id=world.b_site.pk),
                                                  format="json")
    assert foreign.status_code == 400 and "site_id" in foreign.json()


def test_list_filters_and_isolation(world):
    now = timezone.now()
    old = make_observation(world.a_target, world.a_site, observed_at=now - timedelta(days=10))
    new = make_observation(world.a_target, world.a_site, observed_at=now - timedelta(hours=1), filter="B")
    make_observation(world.b_target, world.b_site)
    client = person_client(world.a_viewer)
    ids = {r["observation_id"] for r in client.get(URL).json()["results"]}
    assert ids == {str(old.observation_id), str(new.observation_id)}
    after = (now - timedelta(days=1)).isoformat()
    assert [r["observation_id"] for r in client.get(URL, {"after": after}).json()["results"]] == [
        str(new.observation_id)]
    before = (now - timedelta(days=1)).isoformat()
    assert [r["observation_id"] for r in client.get(URL, {"before": before}).json()["results"]] == [
        str(old.observation_id)]
    assert client.get(URL, {"target_id": world.b_target.pk}).json()["results"] == []
    assert client.get(URL, {"site_id": world.a_site.pk, "filter": "B"}).json()["count"] == 1
    assert client.get(URL, {"after": "not a date"}).status_code == 400


def test_list_cone_search(world):
    make_observation(world.a_target, world.a_site)
    far = Target.objects.create(network=world.a, name="Polaris", ra_deg=37.95, dec_deg=89.26)
    make_observation(far, world.a_site, ra_deg=far.ra_deg, dec_deg=far.dec_deg)
    client = person_client(world.a_viewer)
    body = client.get(URL, {"ra": 337.29, "dec": 58.41, "radius_deg": 0.1}).json()
    assert [r["target_name"] for r in body["results"]] == ["Delta Cephei"]
    assert body["results"][0]["separation_deg"] < 0.01
    bad = client.get(URL, {"ra": 10, "dec": 10})
    assert bad.status_code == 400 and "radius_deg" in bad.json()
    assert client.get(URL, {"ra": 10, "dec": 95, "radius_deg": 1}).status_code == 400


def test_retrieve_by_observation_id_is_tenant_scoped(world):
    mine = make_observation(world.a_target, world.a_site)
    theirs = make_observation(world.b_target, world.b_site)
    client = person_client(world.a_viewer)
    assert client.get(f"{URL}/{mine.observation_id}").status_code == 200
    assert client.get(f"{URL}/{theirs.observation_id}").status_code == 404
    assert agent_client(world.a_key).get(f"{URL}/{theirs.observation_id}").status_code == 404
    assert client.get(f"{URL}/not-a-uuid").status_code == 404


def test_agent_lists_only_its_own_site(world):
    other = make_site(world.a, name="Second A site")
    make_observation(world.a_target, world.a_site)
    make_observation(world.a_target, other)
    body = agent_client(world.a_key).get(URL).json()
    assert body["count"] == 1 and body["results"][0]["site_id"] == world.a_site.pk


def test_unauthenticated_upload_is_refused(world):
    from rest_framework.test import APIClient

    response = APIClient().post(URL, payload(world.a_target), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_flat_photometry_is_stored_and_nested_still_works(world):
    client = agent_client(world.a_key)
    flat = {**payload(world.a_target), "magnitude": 11.5, "mag_error": 0.04, "comparison_stars": ["C1", {"name": "C2"}]}
    del flat["observation_id"], flat["photometry"]
    response = client.post(URL, flat, format="json")
    assert response.status_code == 201, response.json()
    stored = Observation.objects.get(observation_id=response.json()["observation_id"])
    assert (stored.magnitude, stored.magnitude_error) == (11.5, 0.04)
    assert [s["name"] for s in stored.comparison_stars] == ["C1", "C2"]


def test_unknown_fields_are_refused_by_name_never_dropped(world):
    client = agent_client(world.a_key)
    response = client.post(URL, {**payload(world.a_target), "magnitud": 11.5, "colour": "red"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"magnitud", "colour"} and "unknown field" in response.json()["colour"][0]
    assert not Observation.objects.exists()


def test_flat_and_nested_photometry_together_are_refused(world):
    client = agent_client(world.a_key)
    both = {**payload(world.a_target), "magnitude": 11.5, "photometry": {"magnitude": 11.4}}
    response = client.post(URL, both, format="json")
    assert response.status_code == 400 and "not both" in response.json()["photometry"][0]


def test_a_record_without_an_id_gets_the_same_id_on_every_retry(world):
    client = agent_client(world.a_key)
    record = payload(world.a_target)
    del record["observation_id"]
    ids = {client.post(URL, [record, record], format="json").json()["results"][0]["observation_id"]
           for _ in range(2)}
    assert len(ids) == 1 and Observation.objects.count() == 1
    other = client.post(URL, {**record, "filter": "B"}, format="json")
    assert other.status_code == 201 and other.json()["observation_id"] not in ids


def test_a_batch_costs_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    client = agent_client(world.a_key)
    client.post(URL, [payload(world.a_target)], format="json")  # warm the key and the caches
    batch = [payload(world.a_target) for _ in range(200)]
    with django_assert_max_num_queries(20):  # (SQLite splits a bulk insert in a few statements)
        response = client.post(URL, batch, format="json")
    assert response.status_code == 201 and response.json()["created"] == 200
    assert Observation.objects.count() == 201
