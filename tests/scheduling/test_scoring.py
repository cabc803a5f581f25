"""Each score term on its own, with the values the docstrings promise."""
import numpy as np
import pytest

from scheduling import CampaignSpec, TimeCriticalWindow, scoring
from scheduling.specs import SchedulingError
from scheduling.tables import TargetTable
from tests.scheduling.factories import NOW, target

W = scoring.Weights()


def test_cadence_deficit_is_elapsed_over_cadence_capped():
    cadence = np.array([24.0, 24.0, 24.0, np.nan])
    last = np.array([NOW - 12 * 3600, NOW - 100 * 86400, np.nan, NOW])
    assert scoring.cadence_term(cadence, last, NOW, W) == pytest.approx([0.5, 3.0, 3.0, 1.0])


def test_coverage_grows_with_what_is_missing_and_drops_finished_targets():
    specs = [
        target(1, 10, 10, hours_needed=10, hours_observed=2.5),
        target(2, 10, 10, min_observations=10, observations_total=10, hours_needed=1, hours_observed=1),
        target(3, 10, 10, min_observations=10, observations_total=10, cadence_hours=24),
        target(4, 10, 10),
    ]
    table = TargetTable.from_specs(specs, NOW)
    assert scoring.coverage_term(table, W) == pytest.approx([1.75, 0.0, 1.0, 1.0])


def test_campaign_boosts_multiply_while_running_and_redundancy_sets_the_quota():
    running = CampaignSpec(1, priority_boost=2.0)
    over = CampaignSpec(2, priority_boost=5.0, ends_at=NOW - 1)
    occultation = CampaignSpec(3, priority_boost=1.5, policy="redundant", sites=3)
    table = TargetTable.from_specs([target(1, 10, 10, campaigns=(running, over, occultation)), target(2, 10, 10)], NOW)
    assert table.campaign_boost == pytest.approx([3.0, 1.0])
    assert table.site_quota.tolist() == [3, 1]


def test_urgency_rises_as_the_window_closes():
    u = scoring.urgency_term(np.array([2.0, 2.0, 2.0]), np.array([0.0, 1.0, 23.0]), W)
    assert u == pytest.approx([8.0, 5.0, 2.25])
    assert u[0] > u[1] > u[2]


def test_magnitude_against_the_limit():
    lim = np.array([15.0])
    mags = np.array([12.0, 14.0, 15.0, 15.5, 16.0, np.nan])
    assert scoring.magnitude_term(lim, mags, W) == pytest.approx([1.0, 1.0, 1 / 3, 0.0, 0.0, 1.0])


def test_field_of_view_must_hold_the_target():
    assert scoring.fov_term(np.array([30.0]), np.array([10.0, 45.0, 90.0, np.nan]), W) == pytest.approx(
        [1.0, 2 / 3, 0.0, 1.0])


def test_reliability_recent_site_and_altitude_terms():
    assert scoring.reliability_term(np.array([0.8, np.nan]), W) == pytest.approx([0.8, 1.0])
    assert scoring.recent_site_term(np.array([0.0, 0.5, 1.0]), W) == pytest.approx([1.0, 0.75, 0.5])
    assert scoring.altitude_term(np.sin(np.radians([90.0, 30.0, -5.0])), W) == pytest.approx([1.0, 0.5, 0.0])


def test_inactive_and_expired_targets_get_no_priority():
    table = TargetTable.from_specs([target(1, 10, 10, active=False), target(2, 10, 10, expires_at=NOW - 1),
                                    target(3, 10, 10, priority=4)], NOW)
    assert scoring.target_terms(table, NOW, W)["priority"] == pytest.approx([0, 0, 4])


@pytest.mark.parametrize("kwargs, message", [
    ({"ra_deg": 360.0}, "ra_deg"), ({"dec_deg": -91.0}, "dec_deg"), ({"priority": -1}, "priority"),
    ({"exposure_sec": 0}, "exposure_sec"), ({"cadence_hours": -1}, "cadence"),
])
def test_bad_targets_are_refused_with_the_field_named(kwargs, message):
    fields = dict(id=1, name="x", ra_deg=10.0, dec_deg=10.0) | kwargs
    from scheduling import TargetSpec
    with pytest.raises(SchedulingError, match=message):
        TargetSpec(**fields)


def test_bad_campaigns_and_windows_are_refused():
    with pytest.raises(SchedulingError, match="policy"):
        CampaignSpec(1, policy="sometimes")
    with pytest.raises(SchedulingError, match="at least 1 site"):
        CampaignSpec(1, policy="redundant", sites=0)
    with pytest.raises(SchedulingError, match="end after"):
        TimeCriticalWindow(NOW, NOW - 1)
