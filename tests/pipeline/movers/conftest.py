"""Seeded sequences with movers of known truth, shared by the mover tests (module-scoped: each is costly)."""
import numpy as np
import pytest
from datas_pipeline.movers import MoverOptions, find_movers
from datas_pipeline.movers.synthetic import MOVER_DTYPE, make_mover_sequence

N_FRAMES = 24
SHAPE = (256, 256)


def movers(rows):
    """MOVER_DTYPE rows from (x0, y0, vx, vy, snr) tuples (position at frame 0, px/frame)."""
    out = np.zeros(len(rows), MOVER_DTYPE)
    for i, row in enumerate(rows):
        out[i]["x"], out[i]["y"], out[i]["vx"], out[i]["vy"], out[i]["snr"] = row
    return out


# The "done when" sequence: rates 0.3-6 px/frame at SNR 3-20, a fast bright mover, a trail.
TRUTH = movers([
    (40.0, 60.0, 0.30, 0.05, 3.0),
    (200.0, 40.0, -0.35, 0.35, 4.0),
    (60.0, 200.0, 1.0, -0.6, 3.0),
    (30.0, 120.0, 2.0, 0.9, 5.0),
    (230.0, 220.0, -4.0, -2.0, 10.0),
    (20.0, 20.0, 6.0, 6.0 * 0.45, 20.0),
    (128.0, 230.0, 0.2, -3.5, 10.0),
])


@pytest.fixture(scope="session")
def sequence():
    return make_mover_sequence(N_FRAMES, SHAPE, TRUTH, seed=11, trail_frames=(9,), cosmic_rays_per_frame=6,
                               hot_pixel_fraction=3e-4)


@pytest.fixture(scope="session")
def result(sequence):
    return find_movers(sequence.frames, headers=sequence.headers, wcs=sequence.wcs,
                       options=MoverOptions(workers=1))
