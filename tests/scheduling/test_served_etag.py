"""The ETag of GET /api/v1/targets covers what is served, not only the pass's list."""
import pytest

from scheduling.passes import run_network_pass
from sites.models import Site
from sites.services import forget_site_keys
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world, make_target
from tests.scheduling.helpers import clear_skies

pytestmark = pytest.mark.django_db
TARGETS = "/api/v1/targets"


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    clear_skies(world.a_site, world.b_site)
    world.a_site.refresh_from_db()
    world.high = make_target(world.a, name="High one", ra_deg=350.0, dec_deg=35.0, priority=3.0,
                             required_filters=["V"], exposure_sec=30)
    return world


def test_unchanged_list_still_answers_304_across_passes(world):
    client = agent_client(world.a_key)
    etag = client.get(TARGETS, {"count": 10})["ETag"]
    run_network_pass(world.a)
    assert client.get(TARGETS, {"count": 10}, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_rain_after_the_pass_is_not_a_304(world):
    client = agent_client(world.a_key)
    first = client.get(TARGETS, {"count": 10})
    assert first.json()["targets"]
    Site.objects.filter(pk=world.a_site.pk).update(weather_status="rain")
    forget_site_keys(site_ids=[world.a_site.pk])
    again = client.get(TARGETS, {"count": 10}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert again.json()["targets"] == [] and again.json()["reason"]
    assert again["ETag"] != first["ETag"]


def test_an_edited_target_is_not_a_304(world):
    client = agent_client(world.a_key)
    etag = client.get(TARGETS, {"count": 10})["ETag"]
    world.high.ra_deg = 351.0
    world.high.name = "Renamed"
    world.high.save()
    run_network_pass(world.a)
    again = client.get(TARGETS, {"count": 10}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200
    assert 351.0 in [t["ra_deg"] for t in again.json()["targets"]]


def test_the_schedule_command_explains_as_the_api_does(world):
    import io

    from django.core.management import call_command

    from scheduling.passes import cached_list
    from scheduling.ranking import explain

    out = io.StringIO()
    call_command("schedule", "--site", world.a_site.name, stdout=out)
    entries = cached_list(world.a_site.pk)["entries"]
    assert entries
    lines = out.getvalue().splitlines()
    for entry in entries:
        [line] = [x for x in lines if entry["target_name"][:24] in x]
        assert line.rstrip().endswith(explain(entry["terms"]))
