"""The rules of a scheduling pass: who gets a list, what is on it, in which order, and where."""
import json

import numpy as np
import pytest
from datas_pipeline.sky.visibility import HorizonProfile
from datas_pipeline.sky.windows import observable_windows

from scheduling import (
    CampaignSpec,
    SchedulerConfig,
    TimeCriticalWindow,
    schedule_network,
)
from tests.scheduling.factories import NOW, random_network, site, sky_position, target

HERE = site(1, lat=30.0, lon=0.0)


def ids(schedule, site_id):
    return [e.target_id for e in schedule.sites[site_id].entries]


def test_each_entry_has_plan_window_and_the_terms_that_multiply_to_its_score():
    ra, dec = sky_position(30, 0, 0.5, 30)
    result = schedule_network([target("m", ra, dec, filters=("v", "B"), exposure_sec=120, magnitude=11)],
                              [site(1, lat=30, lon=0, filters=("B", "V"), limiting_mag=16)], NOW)
    (entry,) = result.sites[1].entries
    assert entry.rank == 1 and entry.score == pytest.approx(np.prod(list(entry.terms.values())))
    assert set(entry.terms) == {"priority", "campaign", "cadence", "coverage", "urgency", "altitude", "magnitude",
                                "filters", "fov", "reliability", "recent_site"}
    assert [s.filter for s in entry.filter_plan] == ["V", "B"]  # the wheel's names, in request order
    assert all(s.exposure_sec == 120 and s.count >= 1 for s in entry.filter_plan)
    assert entry.window_start == pytest.approx(NOW, abs=1) and entry.window_end > NOW + 3600
    assert entry.window_start <= entry.best_time <= entry.window_end
    assert 1.0 <= entry.airmass < 1.3
    assert result.valid_until == NOW + SchedulerConfig().valid_for_s
    json.dumps(result.sites[1].as_dict())  # the cache stores it as JSON


def test_window_end_agrees_with_the_visibility_windows():
    ra, dec = sky_position(30, 0, 2.0, 10)
    horizon = HorizonProfile.from_points({0: 25, 90: 25, 180: 25, 250: 40, 300: 25})
    here = site(1, lat=30, lon=0, horizon=horizon)
    entry = schedule_network([target(1, ra, dec)], [here], NOW).sites[1].entries[0]
    windows = observable_windows([ra], [dec], [here.observatory], NOW, NOW + 12 * 3600)[0][0]
    assert entry.window_end == pytest.approx(windows[0].end, abs=90)


@pytest.mark.parametrize("change, reason", [
    ({"weather": "cloudy"}, "weather: cloudy"),
    ({"weather_reported_at": NOW - 7200}, "stale"),
    ({"is_active": False}, "inactive"),
])
def test_a_cloudy_stale_silent_or_inactive_site_gets_nothing(change, reason):
    ra, dec = sky_position(30, 0, 0.0, 30)
    result = schedule_network([target(1, ra, dec)], [site(1, **change), site(2)], NOW)
    assert result.sites[1].entries == [] and reason in result.sites[1].reason
    assert ids(result, 2) == [1]


def test_a_site_that_never_reported_weather_is_planned_as_if_clear():
    ra, dec = sky_position(30, 0, 0.0, 30)
    result = schedule_network([target(1, ra, dec)], [site(1, weather="unknown", weather_reported_at=None)], NOW)
    assert ids(result, 1) == [1] and result.sites[1].reason == ""


def test_a_site_in_daylight_waits_for_its_night():
    ra, dec = sky_position(30, 0, 0.0, 30)
    result = schedule_network([target(1, ra, dec)], [site(1, lat=30, lon=180)], NOW)  # local noon
    assert result.sites[1].entries == [] and result.sites[1].reason.startswith("night starts at")


def test_horizon_profile_and_hour_angle_limits_keep_targets_off_the_list():
    east_low = sky_position(30, 0, -3.5, 0)   # low in the east
    meridian = sky_position(30, 0, 0.2, 20)
    west = sky_position(30, 0, 4.5, 40)       # beyond a fork mount's west limit
    wall = HorizonProfile.from_points({0: 10, 60: 60, 120: 60, 180: 10})
    limited = site(1, horizon=wall, ha_limits_hours=(-4.0, 4.0), min_altitude_deg=10)
    open_sky = site(2, min_altitude_deg=10)
    targets = [target("east", *east_low), target("meridian", *meridian), target("west", *west)]
    config = SchedulerConfig(list_length=10)
    limited_ids = ids(schedule_network(targets, [limited], NOW, config), 1)
    assert limited_ids == ["meridian"]
    assert sorted(ids(schedule_network(targets, [open_sky], NOW, config), 2)) == ["east", "meridian", "west"]


def test_magnitude_filters_and_field_of_view_rule_out_pairs():
    ra, dec = sky_position(30, 0, 0.0, 30)
    faint = target("faint", ra, dec, magnitude=18)
    ha_only = target("ha", ra, dec + 1, filters=("Ha",))
    huge = target("huge", ra, dec + 2, size_arcmin=120)
    easy = target("easy", ra, dec + 3, magnitude=10)
    result = schedule_network([faint, ha_only, huge, easy],
                              [site(1, limiting_mag=16, filters=("B", "V"), fov_arcmin=30)], NOW)
    assert ids(result, 1) == ["easy"]


def test_time_critical_target_outranks_others_inside_its_window_and_drops_out_after():
    ra, dec = sky_position(30, 0, 0.0, 30)
    window = TimeCriticalWindow(NOW - 1800, NOW + 1800, priority_boost=1.0)
    transit = target("transit", ra, dec - 5, priority=1, time_critical=(window,))
    routine = [target(f"r{i}", ra + i, dec + 2, priority=10) for i in range(5)]
    inside = schedule_network([transit, *routine], [HERE], NOW)
    first = inside.sites[1].entries[0]
    assert first.target_id == "transit" and first.urgent and first.terms["urgency"] > 1
    assert first.window_end == pytest.approx(window.end, abs=1)  # the window to use closes with it
    assert first.score < inside.sites[1].entries[1].score  # first by urgency, not by raw score
    after = schedule_network([transit, *routine], [HERE], NOW + 3600)
    before = schedule_network([transit, *routine], [HERE], NOW - 3600)
    assert "transit" not in ids(after, 1) and "transit" not in ids(before, 1)


def test_urgency_grows_as_the_window_closes():
    ra, dec = sky_position(30, 0, 0.0, 30)
    soon = target("soon", ra, dec, time_critical=(TimeCriticalWindow(NOW - 60, NOW + 1200),))
    later = target("later", ra, dec, time_critical=(TimeCriticalWindow(NOW - 60, NOW + 5 * 3600),))
    entries = schedule_network([later, soon], [site(1), site(2)], NOW).sites
    terms = {e.target_id: e.terms["urgency"] for s in entries.values() for e in s.entries}
    assert terms["soon"] > terms["later"]


def test_urgent_targets_go_to_the_best_free_site():
    ra, dec = sky_position(30, 0, 0.0, 30)
    window = (TimeCriticalWindow(NOW - 60, NOW + 3600),)
    a = target("a", ra, dec, priority=5, time_critical=window)
    b = target("b", ra + 1, dec, priority=4, time_critical=window)
    best, second = site(1, reliability=1.0), site(2, reliability=0.9)
    result = schedule_network([a, b], [best, second], NOW)
    assert ids(result, 1) == ["a"] and ids(result, 2) == ["b"]


def test_redundant_campaign_gets_its_sites_and_diverse_targets_one():
    ra, dec = sky_position(30, 0, 0.0, 30)
    occultation = CampaignSpec("occ", policy="redundant", sites=3, priority_boost=3.0)
    transit = CampaignSpec("exo", policy="diverse", priority_boost=3.0)
    targets = [target("occ", ra, dec, campaigns=(occultation,)), target("exo", ra + 2, dec, campaigns=(transit,)),
               *[target(i, ra + 0.1 * i, dec - 3, priority=2) for i in range(20)]]
    sites = [site(j, lat=30 + j, lon=j) for j in range(5)]
    given = schedule_network(targets, sites, NOW).assignments()
    assert len(given["occ"]) == 3
    assert len(given["exo"]) == 1
    assert all(len(v) == 1 for k, v in given.items() if k != "occ")
    # With fewer sites than asked for, it gets every site that can see it.
    assert len(schedule_network(targets, sites[:2], NOW).assignments()["occ"]) == 2


def test_no_target_is_double_booked_and_lists_are_full_and_ordered():
    targets, sites = random_network(3000, 12, seed=5)
    config = SchedulerConfig(list_length=25)
    result = schedule_network(targets, sites, NOW, config)
    given = result.assignments()
    assert given and all(len(v) == 1 for v in given.values())
    for schedule in result.sites.values():
        assert len(schedule.entries) == 25
        assert [e.rank for e in schedule.entries] == list(range(1, 26))
        scores = [e.score for e in schedule.entries]
        assert scores == sorted(scores, reverse=True)


def test_recent_observations_send_a_target_to_another_site():
    ra, dec = sky_position(30, 0, 0.0, 30)
    twins = [site(1), site(2)]
    assert ids(schedule_network([target("v", ra, dec, recent_sites={1: 3})], twins, NOW), 2) == ["v"]
    assert ids(schedule_network([target("v", ra, dec, recent_sites={2: 3})], twins, NOW), 1) == ["v"]


def test_overdue_targets_outrank_recently_observed_ones():
    ra, dec = sky_position(30, 0, 0.0, 30)
    fresh = target("fresh", ra, dec, cadence_hours=24, last_observed_at=NOW - 3600)
    overdue = target("overdue", ra + 1, dec, cadence_hours=24, last_observed_at=NOW - 3 * 86400)
    assert ids(schedule_network([fresh, overdue], [HERE], NOW), 1) == ["overdue", "fresh"]


def test_moon_limit_keeps_targets_next_to_a_bright_moon_off_the_list():
    from datas_pipeline.sky import ephemeris as eph
    full_moon_midnight = float(eph.to_unix("2026-03-03T00:00:00Z"))
    moon, _ = eph.moon_topocentric(full_moon_midnight, 30.0, 0.0)
    ra, dec = eph.vectors_to_radec(moon)
    near = target("near", float(ra), float(dec) + 5)
    far = target("far", float(ra) + 40, 10.0)
    fresh = {"weather_reported_at": full_moon_midnight - 60}
    avoiding = site(1, min_moon_separation_deg=30, min_altitude_deg=10, **fresh)
    careless = site(2, min_altitude_deg=10, **fresh)
    assert ids(schedule_network([near, far], [avoiding], full_moon_midnight), 1) == ["far"]
    entries = schedule_network([near, far], [careless], full_moon_midnight).sites[2].entries
    assert {e.target_id: round(e.moon_separation_deg) for e in entries}["near"] == pytest.approx(5, abs=1)


def test_availability_bounds_the_window_and_delays_the_list():
    ra, dec = sky_position(30, 0, 0.0, 30)
    available = site(1, availability=((NOW - 600, NOW + 1800),))
    later = site(2, availability=((NOW + 30 * 60, NOW + 3 * 3600),))
    result = schedule_network([target(1, ra, dec)], [available, later], NOW)
    (entry,) = result.sites[1].entries
    assert entry.window_end == pytest.approx(NOW + 1800, abs=5)
    assert result.sites[2].reference_time == pytest.approx(NOW + 1800)


def test_empty_inputs_give_empty_lists_with_reasons():
    result = schedule_network([], [HERE], NOW)
    assert result.sites[1].entries == [] and result.sites[1].reason == "no target observable"
    assert schedule_network([], [], NOW).sites == {}
