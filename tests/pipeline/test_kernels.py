"""The compiled rejection kernels (datas_pipeline.kernels) against the rules written out
pixel by pixel in plain Python: Siril's sigma and winsorized clipping for stacks, and the
sigma clipping of calibration masters (ccdproc's mean/std and the robust median/MAD)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from datas_pipeline import kernels
from datas_pipeline.calibration.masters import CombineSettings, combine_stack
from datas_pipeline.robust import MAD_TO_SIGMA
from datas_pipeline.stacking.rejection import combine_block


def stack_with_outliers(frames: int, pixels: int, seed: int) -> np.ndarray:
    """Gaussian pixels with cosmic rays, dark outliers, blanks and a few special pixels."""
    rng = np.random.default_rng(seed)
    values = rng.normal(1000.0, 12.0, (frames, pixels)).astype(np.float32)
    hits = rng.random(values.shape) < 0.04
    values[hits] += rng.choice([-1.0, 1.0], hits.sum()) * rng.uniform(60, 3000, hits.sum()).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    values[:, 0] = np.nan                  # no data at all
    values[: frames - 3, 1] = np.nan       # three values: too few to clip
    values[:, 2] = 7.0                     # all equal: sigma 0
    values[: frames // 2, 3] = 5.0         # half the values equal: median deviation 0
    return values


def siril_pixel(values: np.ndarray, weights: np.ndarray, k_low: float, k_high: float, winsorized: bool,
                max_iterations: int = 10) -> tuple[float, int, int, int]:
    """One pixel of Siril's sigma / winsorized clipping, then the weighted mean."""
    good = ~np.isnan(values)
    kept = np.sort(values[good]).astype(np.float64)
    if kept.size == 0:
        return np.nan, 0, 0, 0
    if kept.size > kernels.MIN_KEPT:
        for _ in range(max_iterations):
            centre = np.median(kept)
            sigma = np.std(kept, ddof=1)
            if winsorized:
                low, high = -np.inf, np.inf
                for _ in range(50):
                    low, high = max(low, centre - 1.5 * sigma), min(high, centre + 1.5 * sigma)
                    new = 1.134 * np.std(np.clip(kept, low, high), ddof=1)
                    settled = abs(new - sigma) <= 5e-4 * sigma
                    sigma = new
                    if settled:
                        break
            survivors = kept[(kept >= centre - k_low * sigma) & (kept <= centre + k_high * sigma)]
            if survivors.size < kernels.MIN_KEPT or survivors.size == kept.size:
                break
            kept = survivors
    inside = good & (values >= kept[0]) & (values <= kept[-1])
    below = good & (values < kept[0])
    mean = np.sum(weights[inside] * values[inside].astype(np.float64)) / np.sum(weights[inside])
    return mean, int(inside.sum()), int(below.sum()), int(good.sum() - inside.sum() - below.sum())


def master_pixel(values: np.ndarray, settings: CombineSettings) -> tuple[float, int]:
    """One pixel of a master's sigma clipping: the combined value and the values rejected."""
    valid = values[~np.isnan(values)].astype(np.float64)
    survivors = valid
    for _ in range(settings.iterations):
        if survivors.size == 0:
            break
        centre = np.median(survivors) if settings.center == "median" else np.mean(survivors)
        if settings.spread == "mad_std":
            spread = MAD_TO_SIGMA * np.median(np.abs(survivors - centre))
        else:
            spread = np.std(survivors)
        reject = np.zeros(survivors.size, dtype=bool)
        if settings.sigma_low is not None:
            reject |= survivors - centre < -settings.sigma_low * spread
        if settings.sigma_high is not None:
            reject |= survivors - centre > settings.sigma_high * spread
        if not reject.any():
            break
        survivors = survivors[~reject]
    rejected = valid.size - survivors.size
    if survivors.size == 0:
        return (np.median(valid) if valid.size else np.nan), rejected
    return (np.median(survivors) if settings.method == "median" else np.mean(survivors)), rejected


@pytest.mark.parametrize("winsorized", [False, True], ids=["sigma", "winsorized"])
@pytest.mark.parametrize("weighted", [False, True], ids=["equal", "weighted"])
def test_siril_clipping_follows_the_rule_pixel_by_pixel(winsorized, weighted):
    values = stack_with_outliers(25, 700, seed=4)
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.5, 2.0, 25) if weighted else np.ones(25)
    method = "winsorized" if winsorized else "sigma"
    combined, count, low, high = combine_block(values, weights, method, 2.5, 3.0)
    for p in range(values.shape[1]):
        mean, kept, below, above = siril_pixel(values[:, p], weights, 2.5, 3.0, winsorized)
        assert (count[p], low[p], high[p]) == (kept, below, above), p
        assert combined[p] == pytest.approx(mean, rel=1e-6, nan_ok=True), p
    assert count[0] == 0 and np.isnan(combined[0])
    assert count[1] == 3 and low[1] == high[1] == 0         # too few values to clip
    assert combined[2] == 7.0 and count[2] == 25
    assert (low + high).sum() > 0.03 * values.size        # the outliers were found


def test_siril_clipping_of_a_stack_wider_than_a_block_on_threads_is_the_serial_result():
    values = stack_with_outliers(9, 3 * kernels.BLOCK + 17, seed=6)
    serial = combine_block(values, np.ones(9), "sigma")
    outputs = (np.empty(values.shape[1], np.float32), *(np.empty(values.shape[1], np.int16) for _ in range(3)))
    pairs = kernels.network_array(9)
    cuts = [(0, 300), (300, 301), (301, values.shape[1])]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda c: kernels.siril_clip(values, *c, pairs, np.ones(9), True, False, 3.0, 3.0, 10,
                                                   *outputs), cuts))
    for a, b in zip(serial, outputs, strict=True):
        assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("settings", [
    CombineSettings(center="mean", spread="std", iterations=1),          # ccdproc.combine's default
    CombineSettings(),                                                   # robust: median/MAD, 3 passes
    CombineSettings(method="median", sigma_low=None, sigma_high=2.0),    # one side only
    CombineSettings(sigma_low=0.1, sigma_high=0.1, iterations=5),        # rejects everything in places
], ids=["ccdproc", "robust", "high-only-median", "tight"])
def test_master_clipping_follows_the_rule_pixel_by_pixel(settings):
    values = stack_with_outliers(10, 600, seed=8)
    combined, rejected = combine_stack(values.reshape(10, 20, 30), settings, threads=2)
    expected = [master_pixel(values[:, p], settings) for p in range(values.shape[1])]
    assert rejected == sum(r for _, r in expected)
    np.testing.assert_allclose(combined.ravel(), [v for v, _ in expected], rtol=1e-6, equal_nan=True)
    assert np.isnan(combined.ravel()[0])


def test_master_clipping_is_the_same_on_any_number_of_threads():
    values = stack_with_outliers(12, 64 * 70, seed=9).reshape(12, 64, 70)
    one = combine_stack(values, CombineSettings(band_rows=5), threads=1)
    three = combine_stack(values, CombineSettings(band_rows=5), threads=3)
    assert np.array_equal(one[0], three[0], equal_nan=True) and one[1] == three[1]


def test_kernels_refuse_ranges_and_layouts_that_do_not_fit_the_stack():
    values = np.zeros((5, 100), np.float32)
    out = np.empty(100, np.float32)
    counts = [np.empty(100, np.int16) for _ in range(3)]
    pairs = kernels.network_array(5)
    with pytest.raises(ValueError, match="do not fit"):
        kernels.siril_clip(values, 0, 101, pairs, np.ones(5), True, False, 3.0, 3.0, 10, out, *counts)
    with pytest.raises(ValueError, match="contiguous"):
        kernels.master_clip(np.zeros((5, 200), np.float32)[:, ::2], 0, 100, pairs, True, True, True, 3.0, True,
                            3.0, 3, False, MAD_TO_SIGMA, out)
    with pytest.raises(ValueError, match="comparators"):
        kernels.master_clip(values, 0, 100, kernels.network_array(8), True, True, True, 3.0, True, 3.0, 3, False,
                            MAD_TO_SIGMA, out)
