"""Goals minus what is recorded, and tonight's jobs fitted into the observable windows."""
import datetime as dt

import pytest
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.visibility import HorizonProfile, Observatory
from datas_pipeline.sky.windows import observable_windows

from scheduling.night_plan import (
    ExposureGoal,
    RecordedExposure,
    TargetGoal,
    TaskingError,
    plan_night,
    remaining_goals,
)

# Haute-Provence, a January evening.
OHP = Observatory(43.9317, 5.7125, 650.0, min_altitude_deg=25.0, twilight="nautical")
EVENING = float(eph.to_unix(dt.datetime(2026, 1, 12, 15, tzinfo=dt.UTC)))
M42 = TargetGoal("M 42", 83.8221, -5.3911, (ExposureGoal("Ha", 300, 3600), ExposureGoal("OIII", 300, 1800)),
                 priority=3, group="nebulae")
M31 = TargetGoal("M31", 10.6847, 41.2687, (ExposureGoal("L", 120, 2400), ExposureGoal("R", 120, 1200)), priority=2)
M81 = TargetGoal("M81", 148.8882, 69.0653, (ExposureGoal("L", 60, 1800),), priority=1)
WHEEL = ["Luminance", "Red", "Green", "Blue", "H-Alpha", "OIII"]


def test_remaining_goals_subtracts_recorded_exposure_by_name_and_band():
    recorded = [RecordedExposure("m-42", "H-alpha", 300, 8), RecordedExposure("M42", "OIII", 300, 6),
                RecordedExposure("M31", "Lum", 120, 5), RecordedExposure("Other", "L", 60, 100)]
    left = remaining_goals([M42, M31], recorded)
    assert [g.name for g in left] == ["M 42", "M31"]
    assert [(e.filter, e.total_sec) for e in left[0].exposures] == [("Ha", 1200)]  # OIII is done
    assert [(e.filter, e.total_sec) for e in left[1].exposures] == [("L", 1800), ("R", 1200)]
    assert remaining_goals([M81], [RecordedExposure("M81", "L", 60, 40)]) == []


def test_plan_fits_jobs_into_their_windows_without_overlap():
    plan = plan_night([M81, M31, M42], OHP, WHEEL, EVENING)
    assert plan.night is not None and plan.unplanned == []
    assert [j.start for j in plan.jobs] == sorted(j.start for j in plan.jobs)
    for earlier, later in zip(plan.jobs, plan.jobs[1:], strict=False):
        assert earlier.end <= later.start + 1e-6
    goals = {g.name: g for g in (M81, M31, M42)}
    for job in plan.jobs:
        goal = goals[job.name]
        windows = observable_windows([goal.ra_deg], [goal.dec_deg], [OHP], *plan.night)[0][0]
        assert any(w.start - 1 <= job.start and job.end <= w.end + 1 for w in windows), job.name
        assert all(step.filter in WHEEL for step in job.steps)  # the wheel's names
        wanted = sum(e.total_sec for e in goal.exposures)
        assert 0 < job.exposure_sec <= wanted + 1e-6
    m42 = next(j for j in plan.jobs if j.name == "M 42")
    assert [(s.filter, s.exposure_sec, s.count) for s in m42.steps] == [("H-Alpha", 300, 12), ("OIII", 300, 6)]
    assert m42.group == "nebulae" and m42.min_altitude_deg == 25.0


def test_long_goals_are_cut_to_the_window_sharing_filters_in_proportion():
    greedy = TargetGoal("M31", 10.6847, 41.2687, (ExposureGoal("L", 300, 40 * 3600), ExposureGoal("R", 300, 20 * 3600)))
    (job,) = plan_night([greedy], OHP, WHEEL, EVENING, max_job_hours=2).jobs
    assert job.end - job.start <= 2 * 3600 + 1
    counts = {s.filter: s.count for s in job.steps}
    assert counts["Luminance"] == pytest.approx(2 * counts["Red"], abs=1)


def test_unplannable_goals_come_back_with_a_reason():
    southern = TargetGoal("47 Tuc", 6.0236, -72.0813, (ExposureGoal("L", 60, 600),))
    sii = TargetGoal("M1", 83.6331, 22.0145, (ExposureGoal("SII", 300, 600),))
    boxed_in = Observatory(43.9317, 5.7125, 650.0, min_altitude_deg=25.0, twilight="nautical",
                           horizon=HorizonProfile.from_points({0: 89, 180: 89}))
    plan = plan_night([southern, sii], OHP, WHEEL, EVENING)
    reasons = dict(plan.unplanned)
    assert "not observable" in reasons["47 Tuc"]
    assert "no 'SII' filter" in reasons["M1"]
    assert plan.jobs == []
    assert plan_night([M31], boxed_in, WHEEL, EVENING).jobs == []


def test_goals_are_validated():
    with pytest.raises(TaskingError, match="exposure_sec"):
        ExposureGoal("L", 0, 10)
    with pytest.raises(TaskingError, match="ra must be"):
        TargetGoal("x", 400, 0, ())
