"""Stacking: noise, rejection of artefacts with star flux kept, tiling, maps, normalisation, weights."""
import numpy as np
import pytest
import sep
from datas_pipeline.errors import FrameReadError, StackingError
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.stacking.combine import StackOptions, parse_memory, stack_frames, write_master
from datas_pipeline.synthetic.sequence import inject_cosmic_rays, inject_trail, make_sequence
from scipy.ndimage import binary_dilation

from tests.pipeline.alignment import align_frames

SKY, NOISE = 1000.0, 30.0


def noise_frames(n, shape=(128, 128), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(SKY, NOISE, shape).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("method, efficiency", [("mean", 1.0), ("sigma", 0.97), ("winsorized", 0.97), ("median", 0.80)])
def test_noise_falls_as_one_over_root_n(method, efficiency):
    frames = noise_frames(16, seed=1)
    for n in (1, 4, 16):
        if n < 5 and method != "mean":
            continue
        stacked = stack_frames(frames[:n], StackOptions(method=method, normalization="none")).image
        expected = NOISE / np.sqrt(n) / efficiency
        assert abs(np.std(stacked) / expected - 1.0) < 0.06, (n, np.std(stacked), expected)


@pytest.fixture(scope="module")
def artefact_set():
    """Registered frames, clean and with cosmic rays and trails added by a separate generator."""
    seq = make_sequence(12, (256, 256), n_stars=80, seed=41, max_shift=6.0, max_rotation_deg=0.5,
                        flux_range=(2e4, 4e5))
    clean = [f.data for f in seq.frames]
    rng = np.random.default_rng(99)
    dirty, masks = [], []
    for i, frame in enumerate(clean):
        image = frame.copy()
        mask = inject_cosmic_rays(image, 25, rng)
        if i in (2, 7):
            mask |= inject_trail(image, rng, amplitude_adu=3000.0)
        dirty.append(image)
        masks.append(mask)
    aligned_clean = align_frames(clean)
    aligned_dirty = align_frames(dirty)
    assert all(a.registration.accepted for a in aligned_clean + aligned_dirty)
    # Where each artefact lands on the reference grid: warp its mask too.
    transforms = [a.registration.transform for a in aligned_dirty]
    return seq, [a.warped.data for a in aligned_clean], [a.warped.data for a in aligned_dirty], masks, transforms


def _flux(image, x, y):
    data = np.ascontiguousarray(np.nan_to_num(image, nan=float(np.nanmedian(image))), dtype=np.float64)
    flux, _, _ = sep.sum_circle(data, x, y, 8.0, bkgann=(12.0, 18.0))
    return flux


@pytest.mark.parametrize("method", ["sigma", "winsorized"])
def test_rejection_removes_trails_and_cosmic_rays_and_keeps_star_flux(artefact_set, method):
    seq, clean, dirty, masks, transforms = artefact_set
    reference = stack_frames(clean, StackOptions(method="mean")).image
    rejected = stack_frames(dirty, StackOptions(method=method))
    plain = stack_frames(dirty, StackOptions(method="mean")).image
    # Artefact pixels on the reference grid: map each mask's pixels back through the transform.
    hits = np.zeros(reference.shape, int)
    gy, gx = np.mgrid[0:256, 0:256]
    for mask, transform in zip(masks, transforms, strict=True):
        u, v = transform.apply(gx, gy)
        iu, iv = np.clip(np.rint(u), 0, 255).astype(int), np.clip(np.rint(v), 0, 255).astype(int)
        # A warped artefact spreads over the Lanczos kernel, three pixels each way.
        hits += binary_dilation(mask, np.ones((7, 7), bool))[iv, iu]
    # Classic sigma clipping cannot see two outliers in one pixel's 12 values (they inflate
    # sigma); winsorising can.
    hit = hits == 1 if method == "sigma" else hits >= 1
    # Where every frame covers: with few values one huge outlier inflates sigma beyond its own
    # deviation (at most (N-1)/sqrt(N) sigma), which winsorising cures (tested below).
    hit &= np.isfinite(reference) & (rejected.count + rejected.rejected_low + rejected.rejected_high == len(dirty))
    sky = reference[np.isfinite(reference)]
    stack_noise = float(1.4826 * np.median(np.abs(sky - np.median(sky))))
    assert np.nanmax(np.abs(plain - reference)[hit]) > 100 * stack_noise      # the artefacts are real
    residual = np.abs(rejected.image - reference)[hit]
    assert np.nanpercentile(residual, 99) < 3 * stack_noise                    # and they are gone
    strong = hit & (plain - reference > 20 * stack_noise)
    assert strong.sum() > 100 and np.all(rejected.rejected_high[strong] >= 1)
    # Star flux kept: bright, isolated stars on the reference grid.
    stars = seq.stars[(seq.stars["x"] > 20) & (seq.stars["x"] < 236) & (seq.stars["y"] > 20)
                      & (seq.stars["y"] < 236) & (seq.stars["flux"] > 5e4)]
    ratio = _flux(rejected.image, stars["x"], stars["y"]) / _flux(reference, stars["x"], stars["y"])
    assert len(ratio) >= 5
    assert np.max(np.abs(ratio - 1.0)) < 0.005
    truth = stars["flux"] / seq.gain
    assert abs(np.median(_flux(rejected.image, stars["x"], stars["y"]) / truth) - 1.0) < 0.03


def test_tiled_stack_equals_in_memory_stack(tmp_path):
    frames = noise_frames(9, shape=(200, 150), seed=3)
    frames[4][50:60, 20:30] = np.nan                         # an uncovered patch
    frames[2][100, 70] += 5e4                                # a cosmic ray
    paths = [write_frame(tmp_path / f"f{i}.fits", f) for i, f in enumerate(frames)]
    options = StackOptions(method="winsorized", normalization="additive_scale", weights="noise")
    whole = stack_frames(frames, options)
    tiled = stack_frames(paths, StackOptions(**{**options.__dict__, "memory": 1_000_000}))
    assert whole.bands == 1 and tiled.bands >= 4
    for a, b in ((whole.image, tiled.image), (whole.count, tiled.count),
                 (whole.rejected_low, tiled.rejected_low), (whole.rejected_high, tiled.rejected_high)):
        assert np.array_equal(a, b, equal_nan=True)
    assert tiled.count[55, 25] == 8 and whole.count[0, 0] == 9
    assert tiled.rejected_high[100, 70] == 1


def test_winsorized_rejects_an_outlier_that_inflates_sigma_among_few_frames():
    frames = noise_frames(6, shape=(16, 16), seed=9)
    frames[3][8, 8] = SKY + 3e4
    sigma = stack_frames(frames, StackOptions(method="sigma", normalization="none"))
    winsorized = stack_frames(frames, StackOptions(method="winsorized", normalization="none"))
    assert sigma.rejected_high[8, 8] == 0        # (N-1)/sqrt(N) = 2.04 sigma: out of reach
    assert winsorized.rejected_high[8, 8] == 1
    assert abs(winsorized.image[8, 8] - SKY) < 4 * NOISE


def test_memory_budget_too_small_is_refused():
    with pytest.raises(StackingError, match="memory budget"):
        stack_frames(noise_frames(5, shape=(400, 400)), StackOptions(memory=500_000))


def test_parse_memory():
    assert parse_memory("2GB") == 2 << 30
    assert parse_memory("512MB") == 512 << 20
    assert parse_memory("1.5G") == int(1.5 * (1 << 30))
    assert parse_memory(1000) == 1000
    with pytest.raises(StackingError, match="cannot read memory size"):
        parse_memory("lots")


def test_normalisation_matches_levels_and_scales():
    rng = np.random.default_rng(5)
    base = [rng.normal(0, 20, (64, 64)).astype(np.float32) for _ in range(6)]
    frames = [b * (1 + 0.2 * i) + 500 + 100 * i for i, b in enumerate(base)]
    for mode, level in (("none", 750.0), ("additive", 500.0), ("multiplicative", 500.0), ("additive_scale", 500.0)):
        out = stack_frames(frames, StackOptions(method="mean", normalization=mode))
        assert abs(np.median(out.image) - level) < 3.0, mode
    a = stack_frames(frames, StackOptions(method="mean", normalization="additive_scale"))
    assert [round(s.a, 2) for s in a.stats] == pytest.approx([1 / (1 + 0.2 * i) for i in range(6)], abs=0.03)


def test_noise_weights_favour_quiet_frames():
    rng = np.random.default_rng(6)
    frames = [rng.normal(SKY, s, (128, 128)).astype(np.float32) for s in (10, 10, 10, 60, 60, 60)]
    plain = stack_frames(frames, StackOptions(method="mean", normalization="none"))
    weighted = stack_frames(frames, StackOptions(method="mean", normalization="none", weights="noise"))
    assert np.std(weighted.image) < 0.75 * np.std(plain.image)
    assert weighted.stats[0].weight > 20 * weighted.stats[3].weight
    assert weighted.header["STKW0001"] > weighted.header["STKW0004"]


def test_fwhm_weights_from_grades():
    frames = noise_frames(4, seed=7)
    out = stack_frames(frames, StackOptions(method="mean", weights="fwhm"), fwhm=[2.0, 2.0, 4.0, 4.0])
    assert out.stats[0].weight == pytest.approx(4 * out.stats[2].weight)


def test_minmax_and_percentile_rejection():
    values = np.array([[10.0], [11.0], [12.0], [13.0], [100.0]], dtype=np.float32)
    frames = [np.full((8, 8), v, np.float32) for v in values[:, 0]]
    minmax = stack_frames(frames, StackOptions(method="minmax", low=1, high=1, normalization="none"))
    assert minmax.image[0, 0] == pytest.approx(12.0)
    assert minmax.rejected_low[0, 0] == 1 and minmax.rejected_high[0, 0] == 1
    pct = stack_frames(frames, StackOptions(method="percentile", low=0.2, high=0.2, normalization="none"))
    assert pct.image[0, 0] == pytest.approx(11.5)
    assert pct.rejected_high[0, 0] == 1 and pct.rejected_low[0, 0] == 0
    median = stack_frames(frames, StackOptions(method="median", normalization="none"))
    assert median.image[0, 0] == pytest.approx(12.0)


def test_master_file_carries_maps_and_provenance(tmp_path):
    frames = noise_frames(5, seed=8)
    paths = []
    for i, f in enumerate(frames):
        header = read_frame(write_frame(tmp_path / f"in{i}.fits", f)).header
        header["EXPTIME"] = 30.0
        header["FILTER"] = "R"
        paths.append(write_frame(tmp_path / f"light{i}.fits", f, header))
    result = stack_frames(paths, StackOptions(method="sigma"))
    out = write_master(tmp_path / "master.fits", result)
    master = read_frame(out)
    assert master.data.shape == (128, 128)
    h = master.header
    assert h["NCOMBINE"] == 5 and h["STACKMTH"] == "sigma" and h["FILTER"] == "R"
    assert h["TOTEXP"] == 150.0 and h["IMCMB001"] == "light0.fits"
    from astropy.io import fits
    with fits.open(out) as hdul:
        assert [hdu.name for hdu in hdul][1:] == ["COUNT", "REJLOW", "REJHIGH"]
        assert hdul["COUNT"].data.max() == 5


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(StackingError, match="no frames"):
        stack_frames([])
    with pytest.raises(StackingError, match="differ in size"):
        stack_frames([np.zeros((10, 10)), np.zeros((10, 12))])
    with pytest.raises(StackingError, match="unknown stacking method"):
        stack_frames(noise_frames(3), StackOptions(method="average"))
    with pytest.raises(FrameReadError, match="no such file"):
        stack_frames([tmp_path / "missing.fits"])
    (tmp_path / "junk.fits").write_text("not fits")
    with pytest.raises(FrameReadError):
        stack_frames([tmp_path / "junk.fits"])
