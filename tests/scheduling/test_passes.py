"""The scheduler inside the portal: passes, cached lists, stale marks, the agent endpoint, beat."""
import datetime as dt

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from scheduling import passes as schedules
from scheduling import tasks
from scheduling.passes import BEAT_ENTRY, cached_list, list_state, run_network_pass, site_list, site_spec
from sites.models import Site
from sites.services import forget_site_keys
from targets.models import CoveragePolicy
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_campaign, make_observation, make_site, make_target
from tests.scheduling.helpers import NIGHT, clear_skies

pytestmark = pytest.mark.django_db
TARGETS = "/api/v1/targets"


@pytest.fixture
def world(scheduler_night):
    world = build_world()
    clear_skies(world.a_site, world.b_site)
    world.a_site.refresh_from_db()
    # Two more targets high in the La Palma sky at NIGHT.
    world.vega_like = make_target(world.a, name="High one", ra_deg=350.0, dec_deg=35.0, priority=3.0,
                                  required_filters=["V"], exposure_sec=30)
    world.south = make_target(world.a, name="Too far south", ra_deg=350.0, dec_deg=-80.0, priority=9.0)
    return world


def names(payload):
    return [e["target_name"] for e in payload["entries"]]


def test_a_pass_caches_every_sites_list_with_plans(world):
    result = run_network_pass(world.a)
    assert set(result.sites) == {world.a_site.pk}
    payload = cached_list(world.a_site.pk)
    assert names(payload) == ["High one", "Delta Cephei"]
    first = payload["entries"][0]
    assert first["filter_plan"][0]["filter"] == "V" and first["filter_plan"][0]["exposure_sec"] == 30
    assert first["window_start"] <= first["best_time"] <= first["window_end"]
    assert payload["generated_at"] == "2025-09-15T01:10:00Z"
    assert cached_list(world.b_site.pk) is None  # the other network's pass has not run


def test_site_spec_maps_the_spine_fields(world):
    site = world.a_site
    site.horizon = [[0, 10], [180, 30], [360, 20]]
    site.ha_limit_west_h = 5.0
    site.availability = [{"start": "2025-09-15T00:00:00Z", "end": "2025-09-15T03:00:00Z"}]
    spec = site_spec(site)
    assert spec.horizon.min_altitude([0.0, 180.0]).tolist() == [20.0, 30.0]  # 360 folds onto 0, higher wins
    assert spec.ha_limits_hours == (-12.0, 5.0)
    assert spec.availability == ((NIGHT.timestamp() - 4200, NIGHT.timestamp() + 6600),)
    assert spec.weather == "clear" and spec.reliability == site.reliability


def test_agent_gets_the_cached_list_with_etag_and_last_changed(world):
    client = agent_client(world.a_key)
    first = client.get(TARGETS, {"count": 10})
    body = first.json()
    assert [t["name"] for t in body["targets"]] == ["High one", "Delta Cephei"]
    assert body["targets"][0]["plan"]["filter_plan"] == [{"filter": "V", "exposure_sec": 30.0,
                                                          "count": body["targets"][0]["plan"]["filter_plan"][0]["count"]}]
    assert body["stale"] is False and body["reason"] == "" and body["valid_until"] > body["generated_at"]
    etag = first["ETag"]
    assert client.get(TARGETS, {"count": 10}, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get(TARGETS, {"count": 1}, HTTP_IF_NONE_MATCH=etag).status_code == 200  # another query
    state = client.get(f"{TARGETS}/last_changed").json()
    assert state["site_id"] == world.a_site.pk and state["last_changed"] == body["last_changed"]
    assert state["etag"] and state["stale"] is False


def test_last_changed_holds_while_the_content_does_not_change(world, monkeypatch):
    run_network_pass(world.a)
    before = cached_list(world.a_site.pk)
    later = NIGHT + dt.timedelta(minutes=5)
    monkeypatch.setattr("scheduling.passes._now", lambda: later)
    clear_skies(world.a_site, at=later)
    run_network_pass(world.a)
    after = cached_list(world.a_site.pk)
    assert after["generated_at"] > before["generated_at"]
    assert after["last_changed"] == before["last_changed"] and after["etag"] == before["etag"]


def test_a_cloudy_or_silent_site_gets_nothing_at_once(world):
    client = agent_client(world.a_key)
    assert client.get(TARGETS).json()["targets"]
    Site.objects.filter(pk=world.a_site.pk).update(weather_status="cloudy")
    forget_site_keys(site_ids=[world.a_site.pk])  # what every writer behind the ORM's signals must do
    body = client.get(TARGETS).json()
    assert body["targets"] == [] and body["reason"] == "weather: cloudy"
    Site.objects.filter(pk=world.a_site.pk).update(weather_status="clear",
                                                   weather_reported_at=NIGHT - dt.timedelta(hours=3))
    forget_site_keys(site_ids=[world.a_site.pk])
    assert "stale" in client.get(TARGETS).json()["reason"]


@pytest.mark.parametrize("change", ["observation", "target", "alert", "weather", "campaign"])
def test_changes_mark_the_lists_stale_and_a_new_pass_clears_it(world, change, django_capture_on_commit_callbacks):
    run_network_pass(world.a)
    assert list_state(world.a_site)["stale"] is False
    with django_capture_on_commit_callbacks(execute=False) as queued:
        if change == "observation":
            make_observation(world.a_target, world.a_site, observed_at=NIGHT - dt.timedelta(minutes=30))
        elif change == "target":
            world.a_target.priority = 7
            world.a_target.save()
        elif change == "alert":
            from targets.models import Alert
            Alert.objects.create(network=world.a, source="ZTF", external_id="ZTF25abc", ra_deg=1.0, dec_deg=2.0)
        elif change == "weather":
            from sites.services import record_heartbeat
            record_heartbeat(world.a_site, weather_status="cloudy")
        else:
            make_campaign(world.a, [world.vega_like], name="New campaign")
    payload = cached_list(world.a_site.pk)
    assert schedules.stale_reason(payload, world.a_site.pk)
    assert len(queued) == 1  # one pass queued, however many rows changed
    tasks.schedule_network_pass(world.a.pk)
    assert list_state(world.a_site)["stale"] is False


def test_a_steady_weather_report_does_not_mark_anything(world, django_capture_on_commit_callbacks):
    from sites.services import record_heartbeat
    run_network_pass(world.a)
    with django_capture_on_commit_callbacks() as queued:
        record_heartbeat(world.a_site, weather_status="clear")
    assert queued == [] and list_state(world.a_site)["stale"] is False


def test_redundant_campaign_puts_a_target_on_several_sites(world):
    more = [make_site(world.a, name=f"Twin {i}", latitude=28.7 + i * 0.1) for i in range(3)]
    clear_skies(*more)
    make_campaign(world.a, [world.vega_like], name="Occultation", coverage_policy=CoveragePolicy.REDUNDANT,
                  coverage_sites=3, priority_boost=1.0)
    result = run_network_pass(world.a)
    assert len(result.assignments()[world.vega_like.pk]) == 3
    assert len(result.assignments()[world.a_target.pk]) == 1
    entry = next(e for s in result.sites.values() for e in s.entries if e.target_id == world.vega_like.pk)
    assert entry.terms["campaign"] == pytest.approx((3.0 + 1.0) / 3.0)


def test_first_request_computes_and_tenancy_holds(world):
    client = agent_client(world.b_key)
    body = client.get(TARGETS).json()
    assert body["site_id"] == world.b_site.pk
    assert all(t["network"] == "net-b" for t in body["targets"])
    assert client.get(f"{TARGETS}/last_changed", {"site_id": world.a_site.pk}).status_code == 400
    assert person_client(world.a_viewer).get(f"{TARGETS}/last_changed",
                                             {"site_id": world.b_site.pk}).status_code == 404
    assert person_client(world.a_viewer).get(f"{TARGETS}/last_changed").status_code == 400


def test_the_beat_entry_exists_and_its_interval_is_the_lists_validity(world):
    entry = PeriodicTask.objects.get(name=BEAT_ENTRY)
    assert entry.task == "network.schedule_all" and entry.interval.every == 5
    entry.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.MINUTES)
    entry.save()
    result = run_network_pass(world.a)
    assert result.valid_until - result.generated_at == 120


def test_the_beat_task_runs_every_network(world):
    figures = tasks.schedule_all.apply().get()
    assert set(figures) == {"net-a", "net-b"}
    assert cached_list(world.a_site.pk) and cached_list(world.b_site.pk)


def test_site_list_serves_a_fresh_list_when_the_old_one_expired(world, monkeypatch, django_capture_on_commit_callbacks):
    run_network_pass(world.a)
    later = NIGHT + dt.timedelta(minutes=30)
    monkeypatch.setattr("scheduling.passes._now", lambda: later)
    clear_skies(world.a_site, at=later)
    monkeypatch.setattr(tasks.schedule_network_pass, "delay", lambda network_id: tasks.schedule_network_pass(network_id))
    with django_capture_on_commit_callbacks(execute=True):
        # Served at once, flagged; the pass it queued runs when the transaction commits.
        old = site_list(world.a_site)
    assert old["stale"] is True and "validity" in old["stale_reason"]
    fresh = site_list(world.a_site)
    assert fresh["generated_at"] == "2025-09-15T01:40:00Z" and fresh["stale"] is False


def test_lean_rows_have_the_serializers_shape(world):
    from scheduling.ranking import target_rows
    from targets.models import Target, TargetAlias
    from targets.serializers import TargetSerializer
    target = world.vega_like
    TargetAlias.objects.create(target=target, name="HD 1")
    TargetAlias.objects.create(target=target, name="Another")
    Target.objects.filter(pk=target.pk).update(expires_at=NIGHT + dt.timedelta(days=3), metadata={"a": 1},
                                               total_observations=4, last_observed_at=NIGHT, total_hours=1.5)
    fresh = Target.objects.select_related("network").prefetch_related("aliases").get(pk=target.pk)
    lean = target_rows(Target.objects.filter(pk=target.pk), "net-a")[target.pk]
    assert lean == dict(TargetSerializer(fresh).data)


def test_target_rows_are_cached_and_dropped_on_edit(world):
    from django.core.cache import cache

    from scheduling.ranking import cached_target_rows, row_key
    from targets.models import TargetAlias
    rows = cached_target_rows([world.vega_like.pk], world.a.pk, "net-a")
    assert rows[world.vega_like.pk]["name"] == "High one" and cache.get(row_key(world.vega_like.pk))
    TargetAlias.objects.create(target=world.vega_like, name="Alias 9")
    assert cache.get(row_key(world.vega_like.pk)) is None
    assert cached_target_rows([world.vega_like.pk], world.a.pk, "net-a")[world.vega_like.pk]["aliases"] == ["Alias 9"]
    world.vega_like.name = "Renamed"
    world.vega_like.save()
    assert cached_target_rows([world.vega_like.pk], world.a.pk, "net-a")[world.vega_like.pk]["name"] == "Renamed"
    # Another network's id never comes back from a network's query.
    assert cached_target_rows([world.b_target.pk], world.a.pk, "net-a") == {}


def test_load_targets_reads_json_columns_and_additive_boosts(world):
    from scheduling.passes import load_targets
    window = {"start": "2025-09-15T00:00:00Z", "end": "2025-09-15T03:00:00Z", "priority_boost": 2.0}
    make_target(world.a, name="Nebula", ra_deg=350.0, dec_deg=40.0, priority=2.0, required_filters=["Ha", "OIII"],
                time_windows=[window], metadata={"size_arcmin": 120, "note": "x"}, total_hours=3.0)
    make_target(world.a, name="Odd metadata", ra_deg=1.0, dec_deg=40.0, metadata={"size_arcmin": "big"})
    specs = {s.name: s for s in load_targets(world.a.pk, NIGHT)}
    nebula = specs["Nebula"]
    assert nebula.filters == ("Ha", "OIII") and nebula.size_arcmin == 120.0 and nebula.hours_needed == 3.0
    (tc,) = nebula.time_critical
    assert tc.start == NIGHT.timestamp() - 4200 and tc.priority_boost == pytest.approx((2.0 + 2.0) / 2.0)
    assert specs["Odd metadata"].size_arcmin is None
    assert "Too far south" in specs and specs["High one"].filters == ("V",)
