"""One large frame measured on two worker processes (shared memory) equals the serial extraction bit for bit."""
import numpy as np
import pytest
from datas_pipeline.detection.extract import BAND_MIN_PIXELS, extract_sources
from datas_pipeline.parallel import worker_pool
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars

N = 2048


@pytest.fixture(scope="module")
def crowded():
    rng = np.random.default_rng(11)
    stars = random_stars((N, N), 8000, rng, flux_range=(1e3, 3e5), margin=5)
    return expose(render_stars((N, N), stars, fwhm=3.2), rng, sky=300.0, bias=500.0)


@pytest.fixture(scope="module")
def pool():
    with worker_pool(2) as workers:
        yield workers


@pytest.mark.parametrize("noise", ["global", "map"])
def test_every_column_is_bit_for_bit_the_serial_one(crowded, pool, noise):
    assert crowded.size >= BAND_MIN_PIXELS
    mask = np.zeros(crowded.shape, dtype=bool)
    mask[100:140, 300:900] = True  # a masked region travels to the workers too
    serial = extract_sources(crowded, mask=mask, noise=noise)
    parallel = extract_sources(crowded, mask=mask, noise=noise, pool=pool)
    assert len(serial) == len(parallel) > 4000
    for name in serial.dtype.names:
        assert np.array_equal(serial[name], parallel[name], equal_nan=True), name


def test_small_frames_stay_in_process(pool):
    rng = np.random.default_rng(2)
    image = expose(render_stars((256, 256), random_stars((256, 256), 40, rng, margin=8), fwhm=3.0), rng)
    serial, parallel = extract_sources(image), extract_sources(image, pool=pool)
    assert all(np.array_equal(serial[n], parallel[n], equal_nan=True) for n in serial.dtype.names)
