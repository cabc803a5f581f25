"""Warping: geometry against an analytic image, flux conservation, coverage, registration round trip,
and the compiled passes against plain numpy gathers."""
import cmath

import numpy as np
import pytest
from datas_pipeline.errors import PipelineError
from datas_pipeline.registration import warp
from datas_pipeline.registration.register import prepare_reference, register_image
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.registration.transforms import Transform, fit_transform, similarity_matrix
from datas_pipeline.registration.warp import kernel_weights, warp_image
from datas_pipeline.synthetic.fields import render_stars
from datas_pipeline.synthetic.sequence import Pose, make_sequence

SHAPE = (200, 240)


def smooth(x, y):
    """A band-limited test image whose value is known everywhere."""
    return 100 + 50 * np.sin(x / 13.0) * np.cos(y / 17.0) + 30 * np.exp(-((x - 120) ** 2 + (y - 90) ** 2) / 400.0)


def similarity(rotation_deg, scale, flip, shift, shape=SHAPE):
    a = scale * cmath.exp(1j * np.radians(rotation_deg))
    c = complex(shape[1] / 2, shape[0] / 2)
    w = -np.conj(c) if flip else c
    return Transform("similarity", similarity_matrix(a, c + complex(*shift) - a * w, flip))


CASES = [(0, 1, False, (0.3, -0.4)), (3, 1.01, False, (5.2, -3.1)), (40, 0.98, False, (10, 20)),
         (91, 1, False, (1, 2)), (180, 1, False, (0, 0)), (-135, 1.02, True, (4, 4)), (0.5, 1, False, (-60, 35))]


@pytest.mark.parametrize("kernel, limit", [("bicubic", 2e-3), ("lanczos3", 0.3)])
@pytest.mark.parametrize("case", CASES)
def test_output_samples_the_frame_where_the_transform_says(case, kernel, limit):
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(float)
    image = smooth(xx, yy).astype(np.float32)
    transform = similarity(*case)
    warped = warp_image(image, transform, kernel=kernel, conserve_flux=False)
    u, v = transform.apply(xx, yy)
    inner = warped.coverage & (u > 6) & (u < SHAPE[1] - 7) & (v > 6) & (v < SHAPE[0] - 7)
    assert inner.sum() > 5000
    assert np.abs(warped.data - smooth(u, v))[inner].max() < limit


def test_coverage_is_the_frame_footprint_and_the_rest_is_fill():
    transform = similarity(30, 1.0, False, (40, -25))
    warped = warp_image(np.ones(SHAPE, np.float32), transform, fill=-1.0)
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    u, v = transform.apply(xx, yy)
    truth = (u >= -0.5) & (u <= SHAPE[1] - 0.5) & (v >= -0.5) & (v <= SHAPE[0] - 0.5)
    assert np.array_equal(warped.coverage, truth)
    assert np.all(warped.data[~warped.coverage] == -1.0)
    assert np.allclose(warped.data[warped.coverage], 1.0, atol=1e-4)


@pytest.mark.parametrize("kernel, scale, limit", [
    ("lanczos3", 1.0, 0.001), ("bicubic", 1.0, 0.001), ("lanczos3", 1.002, 0.001), ("bicubic", 1.002, 0.001),
    # A real change of scale resamples marginally sampled stars at a new pitch: Lanczos
    # ringing then moves up to ~1 % between stars (the total is kept); bicubic stays smoother.
    ("bicubic", 0.97, 0.003), ("bicubic", 1.04, 0.003), ("lanczos3", 0.97, 0.012), ("lanczos3", 1.04, 0.012),
])
def test_star_flux_is_conserved(kernel, scale, limit):
    rng = np.random.default_rng(7)
    gx, gy = np.meshgrid(np.arange(30, 220, 40.0), np.arange(30, 180, 40.0))
    stars = np.zeros(gx.size, dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    stars["x"], stars["y"] = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size), gy.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    stars["flux"] = rng.uniform(1e4, 1e5, gx.size)
    frame = render_stars(SHAPE, stars, fwhm=3.0).astype(np.float32)
    transform = similarity(17.0, scale, False, (2.3, -1.6))
    warped = warp_image(frame, transform, kernel=kernel)
    # Where each star lands on the output grid: invert the mapping.
    inv = np.linalg.inv(transform.matrix)
    ox = inv[0, 0] * stars["x"] + inv[0, 1] * stars["y"] + inv[0, 2]
    oy = inv[1, 0] * stars["x"] + inv[1, 1] * stars["y"] + inv[1, 2]
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    ratios = []
    for x0, y0, x1, y1 in zip(ox, oy, stars["x"], stars["y"], strict=True):
        if not (15 < x0 < SHAPE[1] - 15 and 15 < y0 < SHAPE[0] - 15):
            continue
        after = warped.data[np.hypot(xx - x0, yy - y0) < 14.0].sum()
        before = frame[np.hypot(xx - x1, yy - y1) < 14.0 * scale].sum()
        ratios.append(after / before)
    assert len(ratios) >= 10
    assert np.max(np.abs(np.array(ratios) - 1.0)) < limit
    assert abs(np.mean(ratios) - 1.0) < 0.002


def test_registered_frame_lands_on_the_reference():
    seq = make_sequence(2, (256, 256), n_stars=120, seed=31, poses=[Pose(), Pose(7.3, -4.6, 2.5, 1.005)])
    ref, frame = seq.frames[0].data, seq.frames[1].data
    result = register_image(prepare_reference(ref), frame)
    warped = warp_image(frame, result.require(), ref.shape)
    ref_stars = find_control_stars(ref, 40)
    on_grid = find_control_stars(np.nan_to_num(warped.data, nan=float(np.nanmedian(warped.data))), 40)
    d = np.hypot(ref_stars["x"][:, None] - on_grid["x"][None], ref_stars["y"][:, None] - on_grid["y"][None])
    nearest = d.min(axis=1)
    assert np.median(nearest[nearest < 1]) < 0.05
    # The difference image is noise, not star residuals (two frames' noise add in quadrature).
    diff = (warped.data - ref)[warped.coverage]
    noise = np.sqrt(seq.sky + 5.0**2)
    assert np.std(diff) < 2.0 * noise


def test_polynomial_transform_uses_the_direct_path():
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(float)
    image = smooth(xx, yy).astype(np.float32)
    ref = np.column_stack([np.random.default_rng(1).uniform(0, 239, 60), np.random.default_rng(2).uniform(0, 199, 60)])

    def bend(p):
        return np.column_stack([p[:, 0] * 1.001 + 2.5 + 3e-5 * (p[:, 1] - 100) ** 2, p[:, 1] - 1.5 + 2e-5 * p[:, 0] ** 2])

    transform = fit_transform("polynomial", ref, bend(ref), order=2)
    warped = warp_image(image, transform, kernel="bicubic", conserve_flux=False)
    u, v = transform.apply(xx, yy)
    inner = warped.coverage & (u > 6) & (u < SHAPE[1] - 7) & (v > 6) & (v < SHAPE[0] - 7)
    assert np.abs(warped.data - smooth(u, v))[inner].max() < 2e-3


def test_blank_input_pixels_stay_blank_and_local():
    image = np.full(SHAPE, 50.0, np.float32)
    image[100, 120] = np.nan
    warped = warp_image(image, similarity(0.3, 1.0, False, (0.4, 0.4)))
    holes = ~warped.coverage & np.isfinite(warp_image(np.ones(SHAPE, np.float32),
                                                      similarity(0.3, 1.0, False, (0.4, 0.4))).data)
    assert 1 <= holes.sum() <= 16
    assert np.allclose(warped.data[warped.coverage], 50.0, atol=1e-3)


def test_unknown_kernel_is_a_clear_error():
    with pytest.raises(PipelineError, match="unknown interpolation kernel"):
        warp_image(np.zeros(SHAPE, np.float32), similarity(0, 1, False, (0, 0)), kernel="sinc")


# The compiled 1-D passes against a plain numpy gather: every output pixel reads its taps
# (clamped to the edge, 0 beyond taps + 2 px) and sums them in tap order, in float32.

def gather_along_rows(src, position, kernel, gain=1.0):
    """out[i, j] = sum_k w_k(position[i, j]) src[i, floor(position[i, j]) + first + k]."""
    taps, first = {"lanczos3": (6, -2), "bicubic": (4, -1)}[kernel]
    base = np.floor(position).astype(np.int64)
    weights = kernel_weights(kernel, (position - base).ravel()).reshape(*position.shape, taps) * np.float32(gain)
    start = base + first
    n = src.shape[1]
    values = src[np.arange(src.shape[0])[:, None, None], np.clip(start[..., None] + np.arange(taps), 0, n - 1)]
    out = values[..., 0] * weights[..., 0]
    for k in range(1, taps):
        out += values[..., k] * weights[..., k]
    out[(start < -(taps + 2)) | (start >= n - taps + 1 + taps + 2)] = 0.0
    return out


def gather_shift_rows(src, start, width, kernel, gain=1.0):
    return gather_along_rows(src, start[:, None] + np.arange(width)[None, :], kernel, gain)


def gather_resample_columns(src, position, kernel, gain=1.0):
    return gather_along_rows(src, np.broadcast_to(position, (src.shape[0], len(position))), kernel, gain)


def gather_resample_rows(src, position, kernel, gain=1.0):
    return gather_along_rows(src.T, np.broadcast_to(position, (src.shape[1], len(position))), kernel, gain).T


def gather_shift_columns(src, start, height, kernel):
    return gather_along_rows(src.T, start[:, None] + np.arange(height)[None, :], kernel).T


GATHERS = {"shift_rows": gather_shift_rows, "resample_columns": gather_resample_columns,
           "resample_rows": gather_resample_rows, "shift_columns": gather_shift_columns}


def seeded_frame(shape=(150, 190), seed=11):
    rng = np.random.default_rng(seed)
    stars = np.zeros(40, dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    stars["x"], stars["y"] = rng.uniform(0, shape[1], 40), rng.uniform(0, shape[0], 40)
    stars["flux"] = rng.uniform(1e3, 1e5, 40)
    return (render_stars(shape, stars, fwhm=2.5) + rng.normal(200, 10, shape)).astype(np.float32)


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos3"])
@pytest.mark.parametrize("name, slope", [("shift_rows", 1.0), ("resample_columns", 1.0), ("resample_columns", 0.93),
                                         ("resample_rows", 1.0), ("resample_rows", 1.07), ("shift_columns", 0.01),
                                         ("shift_columns", 0.6)])
def test_each_pass_equals_a_plain_gather(name, slope, kernel):
    src = seeded_frame()
    rng = np.random.default_rng(3)
    along_x = name in ("shift_rows", "resample_columns")
    n_lines = src.shape[1] if name == "shift_columns" else src.shape[0] if name == "shift_rows" else None
    if n_lines is None:
        # Positions run from beyond one edge to beyond the other: clamped taps and zeros too.
        n_in = src.shape[1] if along_x else src.shape[0]
        args = (slope * np.arange(n_in + 20) - 12.0 + rng.uniform(0, 1), kernel, 1.7)
    else:
        # A shear: the start of each line moves by ``slope`` px per line, from off the frame.
        start = slope * np.arange(n_lines) - 15.0 + rng.uniform(0, 1, n_lines)
        args = (start, (src.shape[1] if name == "shift_rows" else src.shape[0]) + 25, kernel)
    got = getattr(warp, name)(src, *args)
    expected = GATHERS[name](src, *args)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(src).max())


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos3"])
@pytest.mark.parametrize("case", [(0.8, 1.0004, False, (3.4, -2.7)),     # four passes, a gentle y-shear
                                  (33.0, 1.0, False, (6.1, 4.2)),        # Paeth's shears, a steep y-shear
                                  (1.5, 0.97, False, (-4.5, 2.2)),       # a true change of scale
                                  (-121.0, 1.01, True, (2.0, -3.0))])    # a mirror and a quarter turn first
def test_warp_equals_the_passes_done_by_plain_gathers(case, kernel, monkeypatch):
    frame = seeded_frame()
    transform = similarity(*case, shape=frame.shape)
    got = warp_image(frame, transform, (140, 200), kernel=kernel)
    for name, gather in GATHERS.items():
        monkeypatch.setattr(warp, name, gather)
    expected = warp_image(frame, transform, (140, 200), kernel=kernel)
    assert np.array_equal(got.coverage, expected.coverage)
    assert got.coverage.sum() > 0.7 * got.coverage.size
    np.testing.assert_allclose(got.data, expected.data, rtol=0, atol=1e-6 * np.abs(frame).max())


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos3"])
def test_scale_passes_take_positions_in_any_order(kernel):
    src = seeded_frame()
    rng = np.random.default_rng(5)
    columns, rows = rng.uniform(-15, src.shape[1] + 15, 70), rng.uniform(-15, src.shape[0] + 15, 60)
    atol = 1e-6 * np.abs(src).max()
    np.testing.assert_allclose(warp.resample_columns(src, columns, kernel, 1.3),
                               gather_resample_columns(src, columns, kernel, 1.3), rtol=0, atol=atol)
    np.testing.assert_allclose(warp.resample_rows(src, rows, kernel, 0.8),
                               gather_resample_rows(src, rows, kernel, 0.8), rtol=0, atol=atol)
