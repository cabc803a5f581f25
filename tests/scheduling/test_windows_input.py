"""Time windows (site availability, target time-critical windows): one reading, refused where
they enter, and a network's bad row never stops another network's pass."""
import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from network.validators import parse_windows
from scheduling import passes as schedules
from scheduling.passes import cached_list, run_all_passes, site_spec
from sites.models import Site
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world
from tests.scheduling.helpers import clear_skies

pytestmark = pytest.mark.django_db
IMPOSSIBLE = [{"start": "2025-02-30T00:00:00", "end": "2025-03-01T00:00:00"}]


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    clear_skies(world.a_site, world.b_site)
    world.a_site.refresh_from_db()
    return world


def test_parse_windows_reads_iso_and_refuses_impossible_dates():
    [(start, end, _)] = parse_windows([{"start": "2025-03-01T00:00:00", "end": "2025-03-01T01:00:00Z"}], "w")
    assert end - start == 3600.0  # naive is UTC
    for bad in (5, IMPOSSIBLE, [{"start": 5, "end": "2025-03-01T00:00:00"}], [{"start": "2025-03-01T00:00:00"}],
                [{"start": "2025-03-01T01:00:00", "end": "2025-03-01T00:00:00"}]):
        with pytest.raises(ValidationError):
            parse_windows(bad, "w")


@pytest.mark.parametrize("availability", [5, IMPOSSIBLE, [{"start": "bad", "end": "2025-03-01T00:00:00"}]])
def test_a_site_refuses_availability_the_scheduler_cannot_read(world, availability):
    response = person_client(world.a_observer).patch(f"/api/v1/sites/{world.a_site.pk}",
                                                     {"availability": availability}, format="json")
    assert response.status_code == 400, response.content
    assert "availability" in response.json()


def test_a_target_refuses_an_impossible_time_window(world):
    response = person_client(world.a_manager).post("/api/v1/targets", {
        "network": "net-a", "name": "X", "ra_deg": 1, "dec_deg": 2,
        "requirements": {"time_windows": IMPOSSIBLE}}, format="json")
    assert response.status_code == 400, response.content
    assert "2025-02-30" in str(response.json())


def test_a_bad_row_already_stored_leaves_its_site_out_not_the_pass(world):
    Site.objects.filter(pk=world.a_site.pk).update(availability=IMPOSSIBLE)  # past the validators
    world.a_site.refresh_from_db()
    with pytest.raises(ValidationError):
        site_spec(world.a_site)
    cache.clear()
    assert agent_client(world.a_key).get("/api/v1/targets").status_code == 200


def test_one_networks_failure_does_not_stop_the_others(world, monkeypatch):
    original = schedules.run_network_pass

    def failing_for_a(network, now=None):
        if network.slug == "net-a":
            raise RuntimeError("net-a's pass broke")
        return original(network, now)

    monkeypatch.setattr(schedules, "run_network_pass", failing_for_a)
    cache.clear()
    figures = run_all_passes()
    assert set(figures) == {"net-b"}
    assert cached_list(world.b_site.pk) is not None
