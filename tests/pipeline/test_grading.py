"""Grading: a session with one dimmed, one trailed, one blurred and one bright-sky frame."""
import numpy as np
import pytest
from datas_pipeline.detection.grading import GradingRules, grade_session, measure_frame
from datas_pipeline.errors import PipelineError
from datas_pipeline.synthetic.fields import expose, random_stars, satellite_streak, sky_image

SHAPE = (288, 288)
SEEING = [3.1, 3.0, 2.7, 3.2, 3.05, 2.95, 3.15, 3.1]  # FWHM (px) of the good frames; good2 is the sharpest
SPOILED = {
    "clouds": {"transparency": 0.3, "sky": 260.0},
    "trailed": {"trail": (9.0, 4.0)},
    "blurred": {"fwhm": 6.0},
    "moonlit": {"sky": 2000.0},
}


@pytest.fixture(scope="module")
def session():
    rng = np.random.default_rng(8)
    stars = random_stars(SHAPE, 140, rng, flux_range=(2e3, 2e5), margin=10)
    frames = [(f"good{i}", {"fwhm": f}) for i, f in enumerate(SEEING)]
    frames[3:3] = list(SPOILED.items())
    qualities = []
    frames.append(("streaked", {"fwhm": 3.0}))
    for name, changes in frames:
        settings = {"sky": 200.0, "fwhm": 3.0, **changes}
        light = sky_image(SHAPE, stars, **settings)
        if name == "streaked":  # a satellite is the stacker's problem, not a reason to drop a frame
            light = light + satellite_streak(SHAPE, (0.0, 40.0), (287.0, 250.0), electrons_per_px=3000.0)
        qualities.append(measure_frame(expose(light, rng, sky=0.0), file=name))
    return grade_session(qualities)


def test_spoiled_frames_are_rejected_with_the_right_reason(session):
    by_name = {g.quality.file: g for g in session.frames}
    for name in SPOILED:
        assert not by_name[name].accepted, name
    assert [r.split(":")[0] for r in by_name["clouds"].reasons] == ["clouds"]
    assert [r.split(":")[0] for r in by_name["trailed"].reasons] == ["trailing"]
    assert [r.split(":")[0] for r in by_name["blurred"].reasons] == ["poor focus or seeing"]
    assert [r.split(":")[0] for r in by_name["moonlit"].reasons] == ["bright sky"]
    assert all(g.accepted for n, g in by_name.items() if n.startswith("good") or n == "streaked")


def test_measures_are_right_and_the_sharpest_frame_is_the_reference(session):
    good = [g for g in session.frames if g.accepted]
    for g in good:
        if g.quality.file.startswith("good"):
            assert abs(g.quality.fwhm_px - SEEING[int(g.quality.file[4:])]) < 0.15
    assert session.frames[session.best].quality.file == "good2"
    assert session.frames[session.best].weight == 1.0 and session.frames[session.best].rank == 1
    assert sorted(g.rank for g in good) == list(range(1, len(good) + 1))
    assert all(g.weight == 0.0 and g.rank is None for g in session.frames if not g.accepted)
    record = session.frames[0].as_dict()
    assert {"file", "accepted", "reasons", "stars", "fwhm_px", "eccentricity", "background", "noise",
            "weight"} <= set(record)
    assert 180 < record["background"] < 220 and 10 < record["noise"] < 25
    assert session.as_dict()["best"] == "good2"


def test_catalogue_check_catches_clouds_a_session_cannot(session):
    rng = np.random.default_rng(2)
    stars = random_stars(SHAPE, 100, rng, flux_range=(1e4, 2e5), margin=10)
    catalog_xy = np.column_stack([stars["x"], stars["y"]])
    clear = measure_frame(expose(sky_image(SHAPE, stars), rng, sky=0.0), catalog_xy=catalog_xy)
    assert clear.catalog_found >= 0.9 * clear.catalog_expected
    # A whole session under thick cloud looks consistent with itself; the catalogue does not.
    murky = [measure_frame(expose(sky_image(SHAPE, stars, transparency=0.02), rng, sky=0.0), catalog_xy=catalog_xy)
             for _ in range(3)]
    graded = grade_session(murky)
    assert all(not g.accepted and g.reasons[0].startswith("clouds") for g in graded.frames)
    assert "catalogue stars found" in graded.frames[0].reasons[0]


def test_absolute_limits_and_empty_frames():
    rng = np.random.default_rng(3)
    stars = random_stars(SHAPE, 60, rng, flux_range=(2e4, 2e5), margin=10)
    frames = [measure_frame(expose(sky_image(SHAPE, stars, fwhm=5.0), rng, sky=0.0)) for _ in range(3)]
    assert all(g.accepted for g in grade_session(frames).frames)
    strict = grade_session(frames, GradingRules(max_fwhm_px=4.0))
    assert all("poor focus" in g.reasons[0] for g in strict.frames) and strict.best is None
    blank = measure_frame(rng.normal(100, 5, SHAPE))
    assert blank.stars == 0
    assert grade_session([blank]).frames[0].reasons[0].startswith("no usable stars")
    with pytest.raises(PipelineError, match="no frames"):
        grade_session([])
    with pytest.raises(PipelineError, match="2-D"):
        measure_frame(np.zeros((3, 4, 4)))
