"""find_movers on seeded sequences: recall, false tracks, streaks, astrometric error, times, bad input."""
import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.movers import MoverOptions, find_movers
from datas_pipeline.movers.evaluate import match_tracks
from datas_pipeline.movers.sequence import MoverError, sequence_times
from datas_pipeline.movers.synthetic import make_mover_sequence

from .conftest import N_FRAMES, SHAPE, movers


def test_every_mover_found_with_at_most_one_false_track(sequence, result):
    match = match_tracks(result.tracks, sequence.movers, result.parameters["t_ref_frame"], N_FRAMES - 1)
    assert match.found.min() >= 0, f"missed movers {np.flatnonzero(match.found < 0)}"
    assert match.false_tracks <= 1
    assert all(tr.kind == "mover" for tr in result.tracks)


def test_satellite_trail_is_a_streak_not_a_mover(sequence, result):
    assert [s.frame for s in result.streaks] == [9]
    streak = result.streaks[0]
    truth = sequence.trail_masks[9]
    # The streak's centre and both ends lie on the true trail, and it spans most of the frame.
    for x, y in ((streak.x, streak.y), (streak.x0, streak.y0), (streak.x1, streak.y1)):
        iy, ix = int(round(y)), int(round(x))
        assert truth[max(iy - 3, 0):iy + 4, max(ix - 3, 0):ix + 4].any()
    assert streak.length_px > 0.6 * SHAPE[0]
    ys, xs = np.nonzero(truth)
    cov = np.cov(xs, ys)
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])) % 180
    assert min(abs(streak.angle_deg - angle), 180 - abs(streak.angle_deg - angle)) < 1.0


def test_positions_within_0_3_px_at_snr_10(sequence, result):
    match = match_tracks(result.tracks, sequence.movers, result.parameters["t_ref_frame"], N_FRAMES - 1)
    for i in np.flatnonzero(sequence.movers["snr"] >= 10):
        track = result.tracks[match.found[i]]
        m = sequence.movers[i]
        err = [np.hypot(p["x"] - (m["x"] + m["vx"] * p["frame"]), p["y"] - (m["y"] + m["vy"] * p["frame"]))
               for p in track.positions]
        assert np.sqrt(np.mean(np.square(err))) < 0.3, (i, np.sqrt(np.mean(np.square(err))))
        # The stated uncertainty is of the right size (not ten times too small or large).
        sigma = np.median([p["sigma_px"] for p in track.positions])
        assert 0.01 < sigma < 0.3


def test_rates_and_sky_positions(sequence, result):
    match = match_tracks(result.tracks, sequence.movers, result.parameters["t_ref_frame"], N_FRAMES - 1)
    for i, j in enumerate(match.found):
        m, track = sequence.movers[i], result.tracks[j]
        assert track.rate == pytest.approx(np.hypot(m["vx"], m["vy"]), abs=0.05 + 0.02 * track.rate)
        p = track.positions[0]
        ra, dec = sequence.wcs.all_pix2world(p["x"], p["y"], 0)
        assert p["ra"] == pytest.approx(float(ra), abs=1e-9) and p["dec"] == pytest.approx(float(dec), abs=1e-9)
        assert p["time"].startswith("2026-12-06T01:")
        gc = track.fit["great_circle"]
        assert gc["cross_rms_arcsec"] < 0.05 and gc["along_rms_arcsec"] < 0.05  # a straight track on the sky


def test_noise_only_sequence_gives_no_tracks():
    seq = make_mover_sequence(N_FRAMES, SHAPE, None, seed=5, trail_frames=(3,), cosmic_rays_per_frame=8,
                              hot_pixel_fraction=5e-4)
    res = find_movers(seq.frames, headers=seq.headers)
    assert res.tracks == []
    assert len(res.streaks) == 1 and res.streaks[0].frame == 3
    assert sum(r["sharp_pixels"] > 0 for r in res.frames) >= N_FRAMES - 2  # cosmic rays were caught


def test_shift_and_stack_finds_what_the_linker_alone_cannot():
    truth = movers([(50.0, 50.0, 0.5, 0.3, 3.0), (200.0, 60.0, -2.0, 1.5, 3.0), (60.0, 200.0, 1.5, -1.2, 3.0)])
    seq = make_mover_sequence(N_FRAMES, SHAPE, truth, seed=21)
    t_ref = (N_FRAMES - 1) / 2
    linker = find_movers(seq.frames, headers=seq.headers, options=MoverOptions(searches=("link",)))
    full = find_movers(seq.frames, headers=seq.headers)
    assert match_tracks(linker.tracks, truth, t_ref, N_FRAMES - 1).recall == 0.0
    found = match_tracks(full.tracks, truth, t_ref, N_FRAMES - 1)
    assert found.recall == 1.0 and found.false_tracks == 0


def test_slow_mover_found_by_drifting_centroid():
    truth = movers([(100.0, 120.0, 0.05, 0.03, 15.0)])  # 1.4 px in 24 frames: the median keeps it
    seq = make_mover_sequence(N_FRAMES, SHAPE, truth, seed=8)
    res = find_movers(seq.frames, headers=seq.headers)
    match = match_tracks(res.tracks, truth, (N_FRAMES - 1) / 2, N_FRAMES - 1)
    assert match.recall == 1.0 and match.false_tracks == 0
    assert res.tracks[match.found[0]].source == "slow"


def test_times_from_headers_with_a_gap_and_order_fallback():
    headers = [fits.Header({"DATE-OBS": f"2026-12-06T01:{m:02d}:00", "EXPTIME": 30.0}) for m in (0, 1, 2, 4, 5)]
    times = sequence_times(headers, 5)
    assert times.source == "header" and times.cadence_s == pytest.approx(60.0, abs=1e-6)
    assert times.frame_units == pytest.approx([0, 1, 2, 4, 5], abs=1e-6)
    assert times.utc[0] == "2026-12-06T01:00:15.000Z"
    headers[2] = fits.Header()
    fallback = sequence_times(headers, 5)
    assert fallback.source == "order" and list(fallback.frame_units) == [0, 1, 2, 3, 4]


def test_rate_follows_the_clock_not_the_frame_count():
    truth = movers([(60.0, 80.0, 2.0, 1.0, 8.0)])
    seq = make_mover_sequence(16, SHAPE, truth, seed=2, cosmic_rays_per_frame=0)
    keep = [i for i in range(16) if i not in (5, 6, 11)]  # frames lost to clouds: the gaps stay in the times
    res = find_movers([seq.frames[i] for i in keep], times=seq.seconds[keep])
    assert len(res.tracks) == 1
    assert res.tracks[0].vx == pytest.approx(2.0, abs=0.05) and res.tracks[0].vy == pytest.approx(1.0, abs=0.05)


def test_memory_bound_gives_the_same_answer(sequence, result):
    small = find_movers(sequence.frames[:12], headers=sequence.headers[:12],
                        options=MoverOptions(memory_bytes=200_000, searches=("link",)))
    big = find_movers(sequence.frames[:12], headers=sequence.headers[:12], options=MoverOptions(searches=("link",)))
    assert [(round(t.x, 6), round(t.y, 6)) for t in small.tracks] == [(round(t.x, 6), round(t.y, 6)) for t in big.tracks]


def test_bad_input_is_a_clear_error():
    with pytest.raises(MoverError, match="at least 5"):
        find_movers([np.zeros((32, 32))] * 4)
    with pytest.raises(MoverError, match="differ in size"):
        find_movers([np.zeros((32, 32))] * 4 + [np.zeros((32, 40))])
    rng = np.random.default_rng(0)
    frames = [rng.normal(100, 5, (64, 64)) for _ in range(6)]
    with pytest.raises(MoverError, match="one distinct finite number"):
        find_movers(frames, times=[0, 1, 1, 2, 3, 4])


def test_clouded_frame_is_rejected_with_its_reason():
    truth = movers([(60.0, 80.0, 2.0, 1.0, 8.0)])
    seq = make_mover_sequence(12, SHAPE, truth, seed=6)
    frames = [f.copy() for f in seq.frames]
    level = np.median(frames[4])
    frames[4] = (frames[4] - level) * 0.2 + level  # stars (and the mover) dimmed by cloud
    res = find_movers(frames, headers=seq.headers)
    assert [r["used"] for r in res.frames].count(False) == 1
    assert not res.frames[4]["used"] and "cloud" in res.frames[4]["reason"]
    assert len(res.tracks) == 1 and 4 not in [p["frame"] for p in res.tracks[0].positions]
