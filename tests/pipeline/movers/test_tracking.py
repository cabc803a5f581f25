"""Trajectory scoring, the velocity grid, pair seeds and the frame-to-frame linker on SNR cubes of known truth."""
import numpy as np
import pytest
from datas_pipeline.movers.detect import local_peaks
from datas_pipeline.movers.linking import link_detections
from datas_pipeline.movers.tracking import (
    TRACK_DTYPE,
    grid_search,
    refine,
    score_tracks,
    score_values,
    seed_pairs,
)

N, SHAPE, SIGMA = 20, (160, 160), 1.3


def _cube(movers, seed=0):
    """Unit-noise SNR maps (smoothed like a matched filter and rescaled) with Gaussian movers of peak SNR."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    cube = np.zeros((N, *SHAPE), np.float32)
    for k in range(N):
        noise = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), SIGMA)
        cube[k] = noise / noise.std()
        for x, y, vx, vy, snr in movers:
            cube[k] += snr * np.exp(-((xx - x - vx * k) ** 2 + (yy - y - vy * k) ** 2) / (4 * SIGMA**2))
    return cube


T = np.arange(N, dtype=float)
USED = np.ones(N, bool)
T_REF = (N - 1) / 2


def test_one_bright_frame_cannot_make_a_track():
    values = np.zeros((2, N))
    values[0, 5] = 50.0  # a cosmic ray on the path
    values[1] = 3.0  # a steady SNR-3 mover
    scores = score_values(values, np.ones_like(values, bool), clip=4.0)
    assert scores["score"][0] == pytest.approx(4.0 / np.sqrt(N))
    assert scores["score"][1] == pytest.approx(3.0 * np.sqrt(N))
    assert scores["half1"][1] == pytest.approx(3.0 * np.sqrt(N / 2))


def test_grid_finds_a_slow_faint_mover_and_refine_sharpens_it():
    truth = (60.0, 70.0, 0.4, -0.25, 3.0)
    cube = _cube([truth])
    found, info = grid_search(cube, T, USED, T_REF, fwhm_px=3.0, v_min=0.2, v_max=1.0, threshold=5.0)
    assert info["velocities"] > 100
    x_ref, y_ref = truth[0] + truth[2] * T_REF, truth[1] + truth[3] * T_REF
    near = found[np.hypot(found["x"] - x_ref, found["y"] - y_ref) < 3]
    assert len(near)
    best = refine(cube, T - T_REF, USED, score_tracks(cube, T - T_REF, USED, near, 4.0), 0.15, 4.0)
    top = best[np.argmax(best["score"])]
    assert top["vx"] == pytest.approx(truth[2], abs=0.05) and top["vy"] == pytest.approx(truth[3], abs=0.05)
    assert top["score"] > 9.0  # ~ 3 sqrt(20) = 13 less the off-grid loss


def test_seeds_find_a_fast_faint_mover():
    truth = (20.0, 30.0, 5.0, 3.5, 3.5)
    cube = _cube([truth], seed=4)
    peaks = [local_peaks(cube[k], 2.5) for k in range(N)]
    seeds = seed_pairs(peaks, cube, T, USED, T_REF, v_min=1.0, v_max=12.0)
    scored = score_tracks(cube, T - T_REF, USED, seeds, 4.0)
    top = scored[np.argmax(scored["score"])]
    assert top["vx"] == pytest.approx(5.0, abs=0.1) and top["vy"] == pytest.approx(3.5, abs=0.1)
    assert top["x"] == pytest.approx(20 + 5 * T_REF, abs=1.0)


def test_linker_links_bright_movers_not_stars():
    truth = (10.0, 20.0, 7.0, 4.0, 12.0)
    cube = _cube([truth, (80.0, 80.0, 0.0, 0.0, 12.0)], seed=2)  # the second one is a star residual
    peaks = [local_peaks(cube[k], 2.5) for k in range(N)]
    tracks = link_detections(peaks, T, USED, T_REF, min_step_px=1.5, max_rate=60.0, tolerance_px=2.0)
    assert len(tracks) == 1
    assert tracks[0]["vx"] == pytest.approx(7.0, abs=0.1) and tracks[0]["vy"] == pytest.approx(4.0, abs=0.1)
    assert tracks.dtype == np.dtype(TRACK_DTYPE)
