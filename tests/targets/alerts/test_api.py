"""/api/v1/alert-rules (managers edit, others read, tenants apart), /api/v1/alert-feeds, alert filters."""
import pytest

from targets.models import Alert, AlertFeed, AlertRule
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_campaign

pytestmark = pytest.mark.django_db
RULES = "/api/v1/alert-rules"


@pytest.fixture
def world():
    return build_world()


def test_managers_create_and_edit_rules(world):
    client = person_client(world.a_manager)
    campaign = make_campaign(world.a, name="GRB follow-up")
    created = client.post(RULES, {"name": "GRBs", "sources": ["GCN"], "alert_types": ["grb"], "min_sites": 2,
                                  "within_hours": 6, "time_critical_hours": 6, "campaign": campaign.pk},
                          format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["network"], body["min_sites"], body["campaign"]) == ("net-a", 2, campaign.pk)
    edited = client.patch(f"{RULES}/{body['id']}", {"mag_max": 18.5}, format="json")
    assert edited.status_code == 200 and AlertRule.objects.get().mag_max == 18.5
    assert person_client(world.a_viewer).get(RULES).json()["results"][0]["name"] == "GRBs"
    assert person_client(world.b_manager).get(RULES).json()["results"] == []
    assert person_client(world.b_manager).patch(f"{RULES}/{body['id']}", {"mag_max": 1}, format="json"
                                                ).status_code == 404


def test_bad_rules_are_refused_with_reasons(world):
    client = person_client(world.a_manager)
    assert person_client(world.a_viewer).post(RULES, {"name": "x"}, format="json").status_code == 403
    assert agent_client(world.a_key).get(RULES).status_code == 403
    bad = client.post(RULES, {"name": "x", "mag_min": 20, "mag_max": 10, "sources": "ZTF"}, format="json")
    assert bad.status_code == 400 and "sources" in bad.json()
    inverted = client.post(RULES, {"name": "x", "mag_min": 20, "mag_max": 10}, format="json")
    assert inverted.status_code == 400 and "mag_max" in inverted.json()
    foreign = client.post(RULES, {"name": "x", "campaign": world.b_campaign.pk}, format="json")
    assert foreign.status_code == 400 and "campaign" in foreign.json()
    client.post(RULES, {"name": "dup"}, format="json")
    assert client.post(RULES, {"name": "dup"}, format="json").status_code == 400
    assert client.post(RULES, {"name": "x", "min_real_bogus": 2}, format="json").status_code == 400


def test_alert_list_filters_and_feed_health(world):
    for i, (status, source) in enumerate([("matched", "ZTF"), ("ignored", "ZTF"), ("retracted", "GCN")]):
        Alert.objects.create(network=world.a, source=source, external_id=f"x{i}", ra_deg=10 + i, dec_deg=20,
                             status=status)
    client = person_client(world.a_viewer)
    assert [a["external_id"] for a in client.get("/api/v1/alerts", {"status": "ignored"}).json()["results"]] == ["x1"]
    assert client.get("/api/v1/alerts", {"status": "nope"}).status_code == 400
    assert client.get("/api/v1/alerts", {"since": "not a date"}).status_code == 400
    assert len(client.get("/api/v1/alerts", {"since": "2000-01-01T00:00:00Z"}).json()["results"]) == 3
    AlertFeed.objects.create(name="ztf-fink", kind="stream", source="ztf", messages=10, alerts=9, skipped=1, lag=3)
    assert client.get("/api/v1/alert-feeds").status_code == 403  # a viewer: the feeds serve every network
    [feed] = person_client(world.a_manager).get("/api/v1/alert-feeds").json()
    assert feed["lag"] == 3 and feed["health"] == "ztf-fink [stream ztf] idle: last message never, lag 3"
    assert "messages" not in feed and "last_error" not in feed


def test_staff_see_the_feeds_counts_and_errors(world):
    from django.contrib.auth import get_user_model
    staff = get_user_model().objects.create_user("ops", is_staff=True)
    AlertFeed.objects.create(name="ztf-fink", kind="stream", source="ztf", messages=10, alerts=9, skipped=1,
                             last_error="timeout")
    [feed] = person_client(staff).get("/api/v1/alert-feeds").json()
    assert feed["messages"] == 10 and "last error: timeout" in feed["health"]


def test_admin_pages_for_rules_and_feeds(world, client):
    from django.contrib.auth import get_user_model
    admin = get_user_model().objects.create_superuser("root", "root@example.org", None)
    client.force_login(admin)
    rule = AlertRule.objects.create(network=world.a, name="Everything")
    AlertFeed.objects.create(name="poll-gaia", kind="poll", source="gaia")
    for url in ("/admin/targets/alertrule/", "/admin/targets/alertrule/add/", f"/admin/targets/alertrule/{rule.pk}/change/",
                "/admin/targets/alertfeed/", "/admin/targets/alert/"):
        assert client.get(url).status_code == 200, url


def test_portal_shows_alert_counts_and_feed_health(world):
    Alert.objects.create(network=world.a, source="ZTF", external_id="1", ra_deg=1, dec_deg=1, status="matched")
    Alert.objects.create(network=world.b, source="ZTF", external_id="2", ra_deg=1, dec_deg=1, status="ignored")
    AlertFeed.objects.create(name="gcn-notices", kind="stream", source="gcn", lag=0)
    page = person_client(world.a_viewer).get("/").content.decode()
    assert "1 matched" in page and "ignored" not in page
    assert "gcn-notices" not in page  # feed health is for the network's managers (tests/portal/test_dashboard.py)
    page = person_client(world.a_manager).get("/").content.decode()
    assert "gcn-notices [stream gcn] idle: last message never, lag 0" in page
