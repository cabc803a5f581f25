"""Registration: accuracy against seeded truth, and refusal of what must not be accepted."""
import re

import numpy as np
import pytest
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.errors import RegistrationError
from datas_pipeline.registration.register import (
    RegistrationGates,
    prepare_reference,
    register_image,
    register_sequence,
    register_stars,
)
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.synthetic.sequence import Pose, make_sequence

CORNER_LIMIT_PX = 0.05

POSES = [
    Pose(),
    Pose(13.3, -7.7, 0.5),
    Pose(-40.2, 22.1, -3.0, 1.01),
    Pose(5.2, 4.9, 90.0),
    Pose(3.1, -2.4, 180.0),                    # a meridian flip
    Pose(7.5, 2.2, 30.0, 0.99, flip_x=True),   # a mirrored frame (diagonal, other camera)
    Pose(-2.0, 1.5, -137.0),
    Pose(0.37, -0.61, 0.02),                   # a sub-pixel dither
]


@pytest.fixture(scope="module")
def posed():
    return make_sequence(len(POSES), (384, 384), n_stars=150, seed=11, poses=POSES)


@pytest.mark.parametrize("index", range(1, len(POSES)))
def test_transform_matches_truth_at_the_corners(posed, index):
    reference = prepare_reference(posed.frames[0].data)
    result = register_image(reference, posed.frames[index].data)
    assert result.accepted, result.reason
    assert posed.corner_error(index, result.transform.apply) <= CORNER_LIMIT_PX
    pose = posed.frames[index].pose
    assert result.quality.flipped == pose.flip_x
    assert abs(((result.quality.rotation_deg - pose.rotation_deg + 180) % 360) - 180) < 0.02
    assert abs(result.quality.scale - pose.scale) < 2e-4
    assert abs(result.quality.dx - pose.dx) < 0.05 and abs(result.quality.dy - pose.dy) < 0.05
    assert result.quality.rms_px < 0.2 and result.quality.inliers >= 40


def test_large_shift_with_partial_overlap():
    seq = make_sequence(2, (320, 320), n_stars=200, seed=5, poses=[Pose(), Pose(150.0, -95.0, 4.0)])
    result = register_image(prepare_reference(seq.frames[0].data), seq.frames[1].data)
    assert result.accepted, result.reason
    assert 0.25 < result.quality.overlap < 0.45
    # Accuracy where the frames overlap; beyond it the fit extrapolates.
    assert seq.overlap_error(1, result.transform.apply) <= CORNER_LIMIT_PX


def test_few_stars_still_register():
    seq = make_sequence(2, (256, 256), n_stars=9, seed=8, flux_range=(3e4, 2e5),
                        poses=[Pose(), Pose(-11.0, 6.5, 12.0)])
    result = register_image(prepare_reference(seq.frames[0].data), seq.frames[1].data)
    assert result.accepted, result.reason
    assert result.quality.inliers <= 12
    assert seq.corner_error(1, result.transform.apply) <= 0.1


def test_cloudy_frame_is_refused_with_a_reason():
    seq = make_sequence(2, (384, 384), n_stars=150, seed=2, poses=[Pose(), Pose(4.0, 3.0, 1.0)],
                        cloudy_frames=(1,), cloud_transparency=0.02)
    result = register_image(prepare_reference(seq.frames[0].data), seq.frames[1].data)
    assert not result.accepted
    assert "stars" in result.reason
    with pytest.raises(RegistrationError, match="refused"):
        result.require()


def test_frame_without_stars_is_refused():
    rng = np.random.default_rng(0)
    blank = rng.normal(200.0, 10.0, (256, 256)).astype(np.float32)
    seq = make_sequence(1, (256, 256), seed=1)
    result = register_image(prepare_reference(seq.frames[0].data), blank)
    assert not result.accepted
    assert "stars found in the frame" in result.reason


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_unrelated_field_is_never_accepted(seed):
    a = make_sequence(1, (384, 384), n_stars=250, seed=seed)
    b = make_sequence(1, (384, 384), n_stars=250, seed=seed + 100)
    result = register_image(prepare_reference(a.frames[0].data), b.frames[0].data)
    assert not result.accepted, result.summary()


def test_false_accepts_are_zero_over_cloudy_and_star_poor_frames():
    """Every accepted transform is right; the degraded frames are refused, not mis-registered."""
    poses = [Pose()] + [Pose(float(dx), float(dy), float(r)) for dx, dy, r in
                        np.random.default_rng(4).uniform([-30, -30, -180], [30, 30, 180], (11, 3))]
    cloudy = (2, 4, 6, 8, 10)
    seq = make_sequence(12, (320, 320), n_stars=120, seed=4, poses=poses, cloudy_frames=cloudy,
                        cloud_transparency=0.015)
    poor = make_sequence(4, (320, 320), n_stars=3, seed=9, flux_range=(1e3, 3e3))
    reference = prepare_reference(seq.frames[0].data)
    wrong = []
    for i, frame in enumerate(seq.frames[1:], start=1):
        result = register_image(reference, frame.data)
        if result.accepted and seq.corner_error(i, result.transform.apply) > 0.5:
            wrong.append(i)
        if i not in cloudy:
            assert result.accepted, result.reason
    for frame in poor.frames:
        result = register_image(reference, frame.data)
        assert not result.accepted
    assert wrong == []


def test_gates_refuse_scale_rotation_and_mirror_with_the_number():
    seq = make_sequence(2, (320, 320), n_stars=150, seed=6, poses=[Pose(), Pose(2.0, 1.0, 25.0, 1.08, True)])
    reference = prepare_reference(seq.frames[0].data)
    assert register_image(reference, seq.frames[1].data, gates=RegistrationGates(max_scale_change=0.1)).accepted
    refused = register_image(reference, seq.frames[1].data)
    assert not refused.accepted and re.search(r"scale 1\.0[78]\d* is outside", refused.reason)
    gates = RegistrationGates(max_scale_change=0.1, max_rotation_deg=10.0)
    assert "rotation" in register_image(reference, seq.frames[1].data, gates=gates).reason
    gates = RegistrationGates(max_scale_change=0.1, allow_flip=False)
    assert "mirrored" in register_image(reference, seq.frames[1].data, gates=gates).reason


def test_drifting_sequence_registers_on_the_reference_not_the_neighbour():
    seq = make_sequence(8, (256, 256), n_stars=120, seed=13, max_shift=0.5, drift=(6.3, -4.1),
                        max_rotation_deg=0.3)
    ref_index, results = register_sequence([f.data for f in seq.frames])
    assert ref_index == 0
    errors = [seq.corner_error(i, r.transform.apply) for i, r in enumerate(results)]
    assert all(r.accepted for r in results)
    # Errors stay flat along the sequence instead of growing with the drift.
    assert max(errors) <= CORNER_LIMIT_PX


def test_hot_pixels_and_cosmic_rays_do_not_pin_the_solution():
    seq = make_sequence(2, (320, 320), n_stars=100, seed=14, poses=[Pose(), Pose(9.4, -3.3, 2.0)],
                        hot_pixel_fraction=0.002, cosmic_rays_per_frame=60)
    stars = find_control_stars(seq.frames[1].data)
    hot = {tuple(p) for p in seq.frames[1].hot_pixels}
    assert not any((round(y), round(x)) in hot for x, y in zip(stars["x"], stars["y"], strict=True))
    result = register_image(prepare_reference(seq.frames[0].data), seq.frames[1].data)
    assert result.accepted and seq.corner_error(1, result.transform.apply) <= CORNER_LIMIT_PX


def test_shared_extraction_tables_register_too():
    seq = make_sequence(2, (320, 320), n_stars=150, seed=15, poses=[Pose(), Pose(-6.0, 8.0, -7.0)])
    ref_table = extract_sources(seq.frames[0].data)
    reference = prepare_reference(stars=ref_table, shape=seq.shape)
    result = register_stars(reference, extract_sources(seq.frames[1].data), seq.shape)
    assert result.accepted, result.reason
    # Isophotal centroids are coarser than windowed ones, but the fit over all stars holds.
    assert seq.corner_error(1, result.transform.apply) <= 0.1


def _distorted(x, y, shape):
    """A known mapping with barrel distortion: shift, rotation and a radial term (px)."""
    cx, cy = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    u, v = x - cx, y - cy
    r2 = (u * u + v * v) / (cx * cx)
    c, s = np.cos(np.radians(1.5)), np.sin(np.radians(1.5))
    k = 1 + 0.004 * r2
    return cx + 3.2 + k * (c * u - s * v), cy - 1.7 + k * (s * u + c * v)


@pytest.mark.parametrize("kind, limit", [("similarity", 8.0), ("affine", 8.0), ("polynomial", 0.05)])
def test_polynomial_fit_follows_distortion(kind, limit):
    rng = np.random.default_rng(3)
    shape = (2000, 2000)
    n = 300
    ref = np.zeros(n, dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    ref["x"], ref["y"] = rng.uniform(0, 1999, n), rng.uniform(0, 1999, n)
    ref["flux"] = rng.uniform(1, 100, n)
    frame = ref.copy()
    frame["x"], frame["y"] = _distorted(ref["x"], ref["y"], shape)
    frame["x"] += rng.normal(0, 0.02, n)
    frame["y"] += rng.normal(0, 0.02, n)
    gates = RegistrationGates(max_rms_px=5.0)
    result = register_stars(prepare_reference(stars=ref, shape=shape), frame, shape, kind=kind,
                            order=3, gates=gates, tolerance_px=4.0)
    assert result.accepted, result.reason
    gx, gy = np.meshgrid(np.linspace(0, 1999, 9), np.linspace(0, 1999, 9))
    tx, ty = _distorted(gx, gy, shape)
    mx, my = result.transform.apply(gx, gy)
    error = np.max(np.hypot(mx - tx, my - ty))
    assert error <= limit
    if kind == "polynomial":
        assert result.quality.rms_px < 0.05
    else:
        assert error > 2.0  # the distortion is real: a linear model cannot follow it


def test_unknown_kind_is_a_clear_error():
    seq = make_sequence(1, (256, 256), seed=1)
    reference = prepare_reference(seq.frames[0].data)
    with pytest.raises(RegistrationError, match="unknown transform kind"):
        register_image(reference, seq.frames[0].data, kind="homography")


def test_a_refusal_carries_the_reason_and_no_transform():
    rng = np.random.default_rng(0)
    table = np.zeros(40, dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    table["x"], table["y"], table["flux"] = rng.uniform(0, 300, 40), rng.uniform(0, 300, 40), rng.uniform(1, 9, 40)
    unrelated = table.copy()
    unrelated["x"], unrelated["y"] = rng.uniform(0, 300, 40), rng.uniform(0, 300, 40)
    result = register_stars(prepare_reference(stars=table, shape=(300, 300)), unrelated, (300, 300))
    assert not result.accepted and result.transform is None and result.reason
    assert set(result.summary()) == {"accepted", "reason", "reference_stars", "frame_stars"}
