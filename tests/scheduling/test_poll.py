"""The agent's poll from the cache (scheduling.poll): the same answer as the full view, no query,
and every refusal (revoked key, deactivated site, spent budget) still immediate."""
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from network.models import Network
from scheduling.passes import run_network_pass
from sites.models import SiteKey
from sites.services import key_record_key, record_heartbeat, revoke_site_key
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world, make_observation, make_target
from tests.scheduling.helpers import NIGHT, clear_skies

pytestmark = pytest.mark.django_db
TARGETS = "/api/v1/targets"


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    clear_skies(world.a_site)
    make_target(world.a, name="High one", ra_deg=350.0, dec_deg=35.0, priority=3.0, required_filters=["V"],
                exposure_sec=30)
    run_network_pass(world.a)
    return world


def polled_twice(client, **params):
    """The first poll goes through DRF (and caches the key); the second is the fast path's."""
    return client.get(TARGETS, params), client.get(TARGETS, params)


def test_the_fast_poll_sends_the_full_views_bytes_without_a_query(world, django_assert_num_queries):
    client = agent_client(world.a_key)
    full, _ = polled_twice(client, count=10, site_id=world.a_site.pk)
    with django_assert_num_queries(0):
        fast = client.get(TARGETS, {"count": 10, "site_id": world.a_site.pk})
    assert fast.status_code == 200 and fast.content == full.content and fast["ETag"] == full["ETag"]
    assert fast.json()["targets"][0]["target_id"] == fast.json()["targets"][0]["id"]
    with django_assert_num_queries(0):
        again = client.get(TARGETS, {"count": 10, "site_id": world.a_site.pk}, HTTP_IF_NONE_MATCH=fast["ETag"])
    assert again.status_code == 304 and again["ETag"] == fast["ETag"]


def test_another_query_or_a_bad_one_goes_through_the_full_view(world):
    client = agent_client(world.a_key)
    polled_twice(client)
    assert client.get(TARGETS, {"count": "zero"}).status_code == 400
    assert client.get(TARGETS, {"site_id": world.b_site.pk}).status_code == 400
    assert len(client.get(TARGETS, {"count": 1}).json()["targets"]) == 1


def test_a_revoked_key_is_refused_at_once(world):
    client = agent_client(world.a_key)
    polled_twice(client)
    revoke_site_key(SiteKey.objects.get(site=world.a_site))
    assert client.get(TARGETS).status_code == 401


def test_a_key_revoked_in_the_admins_bulk_action_is_refused_at_once(world, admin_client):
    client = agent_client(world.a_key)
    polled_twice(client)
    key = SiteKey.objects.get(site=world.a_site)
    admin_client.post("/admin/sites/sitekey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert client.get(TARGETS).status_code == 401


def test_a_deactivated_network_is_refused_at_once(world):
    client = agent_client(world.a_key)
    polled_twice(client)
    network = Network.objects.get(pk=world.a.pk)
    network.is_active = False
    network.save()
    assert client.get(TARGETS).status_code == 401


def test_a_heartbeat_reporting_clouds_empties_the_list_at_once(world):
    client = agent_client(world.a_key)
    first, _ = polled_twice(client)
    assert first.json()["targets"]
    record_heartbeat(world.a_site, weather_status="cloudy")
    cloudy = client.get(TARGETS, HTTP_IF_NONE_MATCH=first["ETag"])
    assert cloudy.status_code == 200 and cloudy.json()["targets"] == []
    assert cloudy.json()["reason"] == "weather: cloudy"


def test_a_new_observation_marks_the_served_list_stale(world):
    client = agent_client(world.a_key)
    first, _ = polled_twice(client)
    make_observation(world.a_target, world.a_site, observed_at=NIGHT)
    assert client.get(TARGETS).json()["stale"] is True


def test_the_budget_holds_on_the_fast_path(world, settings):
    settings.DATAS_AGENT_THROTTLE_RATE = "6/minute"
    client = agent_client(world.a_key)
    codes = [client.get(TARGETS).status_code for _ in range(9)]
    assert codes == [200] * 6 + [429] * 3
    refused = client.get(TARGETS)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0


def test_the_fast_poll_keeps_last_used_at_to_the_minute(world, django_assert_num_queries):
    client = agent_client(world.a_key)
    polled_twice(client)
    key = SiteKey.objects.get(site=world.a_site)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SiteKey.objects.filter(pk=key.pk).update(last_used_at=an_hour_ago)
    record = cache.get(key_record_key(key.lookup))
    cache.set(key_record_key(key.lookup), replace(record, last_used_unix=an_hour_ago.timestamp()))
    with django_assert_num_queries(1):  # the UPDATE, nothing else
        assert client.get(TARGETS).status_code == 200
    key.refresh_from_db()
    assert timezone.now() - key.last_used_at < timedelta(seconds=30)
    with django_assert_num_queries(0):
        assert client.get(TARGETS).status_code == 200
