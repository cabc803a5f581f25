"""Large frames: detection in row bands and measurements on worker processes (shared memory)
give bit for bit the serial catalogue; bands change nothing for objects sep does not deblend."""
import numpy as np
import pytest
from datas_pipeline.detection import bands
from datas_pipeline.detection.extract import BAND_MIN_PIXELS, extract_sources
from datas_pipeline.parallel import worker_pool
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars

N = 2048


def crowded_field(shape, n_stars, seed):
    rng = np.random.default_rng(seed)
    stars = random_stars(shape, n_stars, rng, flux_range=(1e3, 3e5), margin=5)
    return expose(render_stars(shape, stars, fwhm=3.2), rng, sky=300.0, bias=500.0)


@pytest.fixture(scope="module")
def crowded():
    return crowded_field((N, N), 8000, 11)


@pytest.fixture(scope="module")
def tall():
    """Taller than two detection bands: three bands of 1465 rows."""
    return crowded_field((2 * N + 300, N // 2), 4500, 12)


@pytest.fixture(scope="module")
def pool():
    with worker_pool(2) as workers:
        yield workers


def identical(a, b):
    assert len(a) == len(b)
    for name in a.dtype.names:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.mark.parametrize("noise", ["global", "map"])
def test_every_column_is_bit_for_bit_the_serial_one(crowded, pool, noise):
    assert crowded.size >= BAND_MIN_PIXELS
    mask = np.zeros(crowded.shape, dtype=bool)
    mask[100:140, 300:900] = True  # a masked region travels to the workers too
    serial = extract_sources(crowded, mask=mask, noise=noise)
    parallel = extract_sources(crowded, mask=mask, noise=noise, pool=pool)
    assert len(serial) > 4000
    identical(serial, parallel)


@pytest.mark.parametrize(("fast", "noise"), [(False, "global"), (True, "map")])
def test_bands_on_workers_equal_bands_in_turn(tall, pool, monkeypatch, fast, noise):
    monkeypatch.setattr("datas_pipeline.detection.extract.BAND_MIN_PIXELS", 1)
    assert bands.band_edges(tall.shape[0]) is not None and len(bands.band_edges(tall.shape[0])) == 4
    mask = np.zeros(tall.shape, dtype=bool)
    mask[1300:1400, 200:500] = True  # across the first cut
    serial = extract_sources(tall, mask=mask, noise=noise, fast=fast)
    parallel = extract_sources(tall, mask=mask, noise=noise, fast=fast, pool=pool)
    assert len(serial) > 2500
    identical(serial, parallel)


def test_bands_change_only_what_sep_draws_at_random(tall, monkeypatch):
    """Against one whole-frame scan: the same objects at the same barycentres; only deblended
    objects (sep's random sharing of a blend's faint pixels) may differ in their isophotal columns."""
    banded = extract_sources(tall, noise="global", fit_profiles=False)
    monkeypatch.setattr(bands, "BAND_ROWS", 10**6)
    whole = extract_sources(tall, noise="global", fit_profiles=False)
    key = lambda t: np.lexsort((t["x"], t["y"]))  # noqa: E731
    banded, whole = banded[key(banded)], whole[key(whole)]
    assert abs(len(banded) - len(whole)) <= 2
    from scipy.spatial import cKDTree

    dist, j = cKDTree(np.c_[whole["x"], whole["y"]]).query(np.c_[banded["x"], banded["y"]])
    assert np.mean(dist < 1e-6) > 0.999  # barycentres equal (row offsets round at 1e-13 px)
    same = dist < 1e-6
    b, w = banded[same], whole[j[same]]
    assert np.allclose(b["flux"], w["flux"], rtol=1e-9)  # aperture flux at the same centre
    # Objects sep did not deblend (flag bit 1) are the same in every column; deblended ones
    # (a few per cent) got another draw of their isophotal pixels.
    alone = (b["flag"].astype(int) & 1) == 0
    assert alone.mean() > 0.9
    for name in ("npix", "a", "b", "theta", "flux_auto", "kron_radius", "half_light_radius", "x_win", "y_win"):
        assert np.allclose(b[name][alone], w[name][alone], rtol=1e-9, atol=1e-9), name
    assert 0 < np.mean(b["npix"] != w["npix"]) < 0.1


def test_an_object_larger_than_the_overlap_sends_the_frame_back_whole(monkeypatch):
    rng = np.random.default_rng(3)
    image = rng.normal(100.0, 5.0, (1200, 300)).astype(np.float32)
    yy, xx = np.mgrid[0:1200, 0:300]
    image += 400.0 * np.exp(-((yy - 600.0) ** 2 / (2 * 150.0**2) + (xx - 150.0) ** 2 / (2 * 20.0**2)))
    monkeypatch.setattr(bands, "BAND_ROWS", 400)
    monkeypatch.setattr(bands, "BAND_MARGIN", 50)
    banded = extract_sources(image, noise="global", fit_profiles=False)
    monkeypatch.setattr(bands, "BAND_ROWS", 10**6)
    whole = extract_sources(image, noise="global", fit_profiles=False)
    identical(banded, whole)
    assert banded["npix"].max() > 10_000


def test_small_frames_stay_in_process(pool):
    rng = np.random.default_rng(2)
    image = expose(render_stars((256, 256), random_stars((256, 256), 40, rng, margin=8), fwhm=3.0), rng)
    serial, parallel = extract_sources(image), extract_sources(image, pool=pool)
    identical(serial, parallel)
