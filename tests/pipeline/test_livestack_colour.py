"""Live stacking of raw one-shot-colour (Bayer) frames: debayered first, registered on the luminance."""
import numpy as np
from astropy.io import fits
from datas_pipeline.io.fits import write_frame
from datas_pipeline.stacking.live import LiveStacker
from datas_pipeline.synthetic.sequence import Pose, make_sequence

POSES = [Pose(), Pose(3.0, -2.0, 0.3), Pose(-4.0, 2.5, -0.5), Pose(2.2, 1.4, 0.1)]
GAINS = {"R": 0.8, "G": 1.0, "B": 0.6}


def mosaic(image: np.ndarray) -> np.ndarray:
    """An RGGB sensor's view of a grey sky: each cell scaled by its filter's throughput."""
    out = image.astype(np.float32).copy()
    out[0::2, 0::2] *= GAINS["R"]
    out[1::2, 1::2] *= GAINS["B"]
    return out


def test_bayer_frames_are_debayered_registered_and_stacked_in_colour(tmp_path):
    seq = make_sequence(len(POSES), (256, 256), n_stars=120, seed=21, poses=POSES)
    stacker = LiveStacker()
    reports = []
    for i, frame in enumerate(seq.frames):
        path = write_frame(tmp_path / f"osc_{i}.fits", mosaic(frame.data), fits.Header({"BAYERPAT": "RGGB"}))
        reports.append(stacker.add(path))
    assert all(r.accepted for r in reports), [r.reason for r in reports]
    # The registration found each frame's known offset on the luminance.
    for report, pose in zip(reports[1:], POSES[1:], strict=True):
        assert abs(abs(report.rotation_deg) - abs(pose.rotation_deg)) < 0.05
    image = stacker.image
    assert image.shape == (3, 256, 256)
    red, green, blue = (np.nansum(np.clip(plane - np.nanmedian(plane), 0, None)) for plane in image)
    assert abs(red / green - GAINS["R"]) < 0.03 and abs(blue / green - GAINS["B"]) < 0.03
    saved = stacker.save(tmp_path / "live.fits")
    assert fits.getdata(saved).shape == (3, 256, 256)


def test_mono_and_colour_do_not_mix(tmp_path):
    seq = make_sequence(2, (128, 128), n_stars=60, seed=5, poses=[Pose(), Pose(1.0, 1.0, 0.0)])
    stacker = LiveStacker()
    assert stacker.add(seq.frames[0].data).accepted
    colour = write_frame(tmp_path / "osc.fits", mosaic(seq.frames[1].data), fits.Header({"BAYERPAT": "RGGB"}))
    report = stacker.add(colour)
    assert not report.accepted and "mono and colour" in report.reason
