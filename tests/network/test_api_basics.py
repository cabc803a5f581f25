"""API plumbing: schema and docs, JSON 404s, unauthenticated access, token auth, no redirects."""
import pytest
from rest_framework.test import APIClient

from tests.network.api_helpers import person_client
from tests.network.factories import build_world

pytestmark = pytest.mark.django_db


def test_openapi_schema_and_docs_are_served():
    client = APIClient()
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ["/api/v1/targets", "/api/v1/observations", "/api/v1/sites", "/api/v1/sites/{id}",
                 "/api/v1/sites/{id}/heartbeat", "/api/v1/campaigns", "/api/v1/campaigns/{id}", "/api/v1/alerts",
                 "/api/v1/lightcurve/{target_id}"]:
        assert path in paths, path
    assert "bearerKey" in schema.json()["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.parametrize("path", ["/api/v1/sites", "/api/v1/targets", "/api/v1/observations", "/api/v1/campaigns",
                                  "/api/v1/alerts", "/api/v1/lightcurve/1"])
def test_every_endpoint_needs_authentication(path):
    response = APIClient().get(path)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_unknown_api_path_is_a_json_404():
    response = APIClient().get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no such endpoint")


def test_user_without_network_sees_empty_lists():
    from tests.network.factories import make_user

    client = person_client(make_user())
    assert client.get("/api/v1/sites").json()["count"] == 0
    response = client.post("/api/v1/sites", {"name": "x", "latitude": 1, "longitude": 1}, format="json")
    assert response.status_code == 403


def test_network_filter_never_widens_scope():
    world = build_world()
    client = person_client(world.a_viewer)
    assert client.get("/api/v1/targets", {"network": "net-b"}).json()["count"] == 0
    assert client.get("/api/v1/sites", HTTP_X_DATAS_NETWORK="net-b").json()["count"] == 0


@pytest.mark.parametrize("query", ["/api/v1/targets?campaign={}", "/api/v1/observations?site_id={}",
                                   "/api/v1/observations?target_id={}", "/api/v1/frames?site_id={}",
                                   "/api/v1/frames?target_id={}"])
@pytest.mark.parametrize("value", ["99999999999999999999999", "-3", "1.5", "x"])
def test_id_filters_refuse_what_no_row_can_have(query, value):
    """Found by fuzzing the OpenAPI schema: 10**23 reached the database and overflowed (a 500)."""
    world = build_world()
    response = person_client(world.a_manager).get(query.format(value))
    assert response.status_code == 400
    assert query.split("?")[1].split("=")[0] in response.json()
