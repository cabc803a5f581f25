"""Linear-fit and GESD rejection: outliers found as a per-pixel reference implementation finds them."""
import numpy as np
import pytest
from datas_pipeline.stacking.combine import StackingError, StackOptions, stack_frames
from datas_pipeline.stacking.rejection import combine_block
from datas_pipeline.stacking.rejection_fit import gesd_critical
from scipy import stats


def gesd_reference(values, max_fraction, alpha):
    """Rosner's generalized ESD on one pixel, written plainly."""
    x = list(np.sort(values))
    n = len(x)
    removed, exceed = [], 0
    for i in range(int(np.floor(max_fraction * n))):
        if len(x) <= 4:
            break
        arr = np.array(x, dtype=np.float64)
        mean, sd = arr.mean(), arr.std(ddof=1)
        j = 0 if mean - arr[0] > arr[-1] - mean else len(arr) - 1
        r = abs(arr[j] - mean) / sd
        m = n - i
        t = stats.t.ppf(1 - alpha / (2 * m), m - 2)
        if r > (m - 1) * t / np.sqrt((m - 2 + t * t) * m):
            exceed = i + 1
        removed.append(x.pop(j))
    kept = np.sort(values)
    outliers = removed[:exceed]
    for value in outliers:
        kept = np.delete(kept, np.flatnonzero(kept == value)[0])
    return kept.mean(), len(outliers)


def test_gesd_matches_the_reference_pixel_by_pixel():
    rng = np.random.default_rng(3)
    values = rng.normal(1000.0, 10.0, (25, 400)).astype(np.float32)
    hits = rng.random(values.shape) < 0.04
    values[hits] += rng.uniform(50, 5000, hits.sum()).astype(np.float32)   # cosmic rays
    values[0, :50] -= 300.0                                                # a dark outlier
    combined, count, low, high = combine_block(values, np.ones(25), "gesd", 0.3, 0.05)
    for p in range(values.shape[1]):
        mean, n_out = gesd_reference(values[:, p].astype(np.float64), 0.3, 0.05)
        assert count[p] == 25 - n_out and low[p] + high[p] == n_out
        assert combined[p] == pytest.approx(mean, rel=1e-5)
    assert np.mean(low[:50] >= 1) > 0.9  # the dark frame is caught unless big hits mask it
    assert abs(np.mean(combined) - 1000.0) < 1.0


def test_gesd_critical_values_follow_rosner():
    # n = 25, alpha = 0.05, first test: t(1 - 0.05/50, 23) = 3.485, so
    # lambda = 24 x 3.485 / sqrt((23 + 3.485^2) x 25) = 2.822.
    assert gesd_critical(np.array([25]), 0, 0.05)[0] == pytest.approx(2.822, abs=2e-3)
    # Later tests use fewer values and lower limits.
    assert gesd_critical(np.array([25]), 5, 0.05)[0] < 2.822


def test_linear_fit_rejects_the_ends_that_leave_the_line():
    rng = np.random.default_rng(4)
    values = rng.normal(500.0, 5.0, (20, 300)).astype(np.float32)
    values[3, :] += 400.0
    values[7, :100] -= 200.0
    combined, count, low, high = combine_block(values, np.ones(20), "linear", 3.0, 3.0)
    assert np.all(high >= 1) and np.all(low[:100] >= 1)
    clean = np.delete(values, [3], axis=0)
    assert np.abs(combined[100:] - clean[:, 100:].mean(axis=0)).max() < 3.0
    assert np.all(count >= 4)


def test_stacking_refuses_gesd_limits_out_of_range():
    frames = [np.full((8, 8), 1.0, np.float32) for _ in range(5)]
    with pytest.raises(StackingError, match="between 0 and 1"):
        stack_frames(frames, StackOptions(method="gesd", low=3.0, high=3.0))
    result = stack_frames(frames, StackOptions(method="gesd", low=0.3, high=0.05))
    assert np.allclose(result.image, 1.0)
