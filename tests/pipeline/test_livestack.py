"""Live stacking: registration with rotation, refusals with reasons, equality with the batch mean."""
import numpy as np
import pytest
from datas_pipeline.io.fits import write_frame
from datas_pipeline.registration.register import prepare_reference, register_image
from datas_pipeline.registration.warp import warp_image
from datas_pipeline.stacking.live import LiveStacker, watch_folder
from datas_pipeline.synthetic.sequence import Pose, inject_cosmic_rays, make_sequence
from PIL import Image

POSES = [Pose(), Pose(3.2, -1.7, 0.4), Pose(-5.1, 2.2, -0.6), Pose(1.0, 1.0, 0.2), Pose(4.4, 4.1, 180.3),
         Pose(-2.5, 3.3, 179.6), Pose(0.5, -4.0, 0.1), Pose(2.0, 2.0, 0.0)]
CLOUDY = (3,)


@pytest.fixture(scope="module")
def sequence():
    return make_sequence(len(POSES), (256, 256), n_stars=120, seed=51, poses=POSES, cloudy_frames=CLOUDY,
                         cloud_transparency=0.02)


def test_live_stack_equals_the_batch_mean_of_accepted_frames(sequence):
    stacker = LiveStacker(pixel_rejection_sigma=None)
    reports = [stacker.add(f.data) for f in sequence.frames]
    accepted = [i for i, r in enumerate(reports) if r.accepted]
    assert accepted == [i for i in range(len(POSES)) if i not in CLOUDY]
    # The batch: every accepted frame registered on frame 0 and resampled the same way.
    reference = prepare_reference(sequence.frames[0].data)
    batch = [sequence.frames[0].data.astype(np.float64)]
    for i in accepted[1:]:
        transform = register_image(reference, sequence.frames[i].data).require()
        batch.append(warp_image(sequence.frames[i].data, transform).data.astype(np.float64))
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(np.stack(batch), axis=0)
    live = stacker.image
    assert np.array_equal(np.isnan(live), np.isnan(expected))
    assert np.nanmax(np.abs(live - expected)) < 1e-3
    assert np.array_equal(stacker.count, np.sum(np.isfinite(np.stack(batch)), axis=0))


def test_reports_carry_offsets_rotation_and_reasons(sequence):
    stacker = LiveStacker()
    reports = [stacker.add(f.data) for f in sequence.frames]
    last = reports[-1]
    assert (last.frames_total, last.frames_rejected, last.frames_stacked) == (8, 1, 7)
    assert last.snr_gain == pytest.approx(np.sqrt(7))
    flipped = reports[4]
    assert flipped.accepted and abs(abs(flipped.rotation_deg) - 179.7) < 0.05
    assert flipped.offset[0] == pytest.approx(4.4, abs=0.05) and flipped.offset[1] == pytest.approx(4.1, abs=0.05)
    assert flipped.inliers > 30
    cloudy = reports[3]
    assert not cloudy.accepted and "stars" in cloudy.reason
    assert set(cloudy.as_dict()) >= {"accepted", "reason", "frames_stacked", "frames_total", "frames_rejected",
                                     "offset", "rotation_deg", "inliers", "snr_gain"}


def test_pixel_rejection_removes_cosmic_rays_once_deep_enough():
    seq = make_sequence(12, (192, 192), n_stars=80, seed=52, max_shift=4.0)
    rng = np.random.default_rng(7)
    dirty, masks = [], []
    for f in seq.frames:
        image = f.data.copy()
        masks.append(inject_cosmic_rays(image, 20, rng))
        dirty.append(image)
    live = LiveStacker(pixel_rejection_sigma=5.0, min_frames_for_rejection=5)
    plain, clean = LiveStacker(pixel_rejection_sigma=None), LiveStacker(pixel_rejection_sigma=None)
    for image, f in zip(dirty, seq.frames, strict=True):
        assert live.add(image).accepted and plain.add(image).accepted and clean.add(f.data).accepted
    # Cosmic rays of the frames after rejection starts, on the reference grid (by the true pose).
    late_hits = np.zeros((192, 192), bool)
    gy, gx = np.mgrid[0:192, 0:192]
    for f, mask in zip(seq.frames[6:], masks[6:], strict=True):
        u, v = f.pose.apply(gx.ravel(), gy.ravel(), (192, 192))
        iu, iv = np.clip(np.rint(u), 0, 191).astype(int), np.clip(np.rint(v), 0, 191).astype(int)
        late_hits |= mask[iv, iu].reshape(192, 192)
    assert np.nanmax((plain.image - clean.image)[late_hits]) > 500
    assert np.nanpercentile(np.abs(live.image - clean.image)[late_hits], 99) < 30


def test_reset_starts_a_new_stack(sequence):
    stacker = LiveStacker()
    for f in sequence.frames[:3]:
        stacker.add(f.data)
    stacker.reset()
    report = stacker.add(sequence.frames[5].data)
    assert report.accepted and report.frames_stacked == 1 and report.frames_total == 1
    assert stacker.reference.shape == (256, 256)


def test_files_bad_input_and_a_watched_folder(sequence, tmp_path):
    for i in (0, 1, 2, 3):
        write_frame(tmp_path / f"frame{i:02d}.fits", sequence.frames[i].data)
    (tmp_path / "frame99.fits").write_text("this is not FITS")
    write_frame(tmp_path / "other" / "wrong.fits", np.zeros((100, 100), np.float32))
    stacker = LiveStacker()
    reports = list(watch_folder(tmp_path, stacker, once=True))
    assert [r.accepted for r in reports] == [True, True, True, False, False]
    assert "not a readable FITS" in reports[-1].reason
    assert reports[0].source.endswith("frame00.fits")
    wrong = stacker.add(tmp_path / "other" / "wrong.fits")
    assert not wrong.accepted and "100x100" in wrong.reason
    preview = stacker.preview(tmp_path / "preview.png")
    with Image.open(preview) as png:
        assert png.size == (256, 256) and png.mode == "L"
    saved = stacker.save(tmp_path / "live.fits")
    from datas_pipeline.io.fits import read_frame
    assert read_frame(saved).header["NCOMBINE"] == 3


def test_first_frame_without_stars_is_not_a_reference():
    stacker = LiveStacker()
    report = stacker.add(np.random.default_rng(1).normal(100, 5, (128, 128)).astype(np.float32))
    assert not report.accepted and "reference" in report.reason
    assert stacker.image is None



def test_a_refused_frame_reports_no_candidate_transform(sequence):
    stacker = LiveStacker()
    stacker.add(sequence.frames[0].data)
    report = stacker.add(sequence.frames[CLOUDY[0]].data)
    assert not report.accepted and report.reason
    assert np.isnan(report.offset).all() and np.isnan(report.rotation_deg) and report.inliers == 0
