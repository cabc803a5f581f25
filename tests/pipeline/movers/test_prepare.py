"""Raw dithered frames: hot pixels and a hot column found in detector coordinates, then registration."""
import numpy as np
import pytest
from datas_pipeline.movers import MoverOptions, find_movers
from datas_pipeline.movers.evaluate import match_tracks
from datas_pipeline.movers.prepare import detector_defects, register_raw
from datas_pipeline.movers.synthetic import MOVER_DTYPE, STAR_DTYPE
from datas_pipeline.stacking.combine import FrameSet
from datas_pipeline.synthetic.fields import render_stars
from datas_pipeline.synthetic.sequence import Pose, make_sequence

N = 16
DRIFT = (0.7, 0.45)  # px/frame: a mount drifting while it tracks


@pytest.fixture(scope="module")
def raw():
    poses = [Pose(dx=DRIFT[0] * k, dy=DRIFT[1] * k) for k in range(N)]
    seq = make_sequence(N, (200, 200), n_stars=120, seed=3, poses=poses, hot_pixel_fraction=4e-4,
                        hot_pixel_adu=600.0, cosmic_rays_per_frame=3)
    frames = [f.data.copy() for f in seq.frames]
    rng = np.random.default_rng(1)
    # A mover at 1.2 px/frame on the sky (reference coordinates), drawn where each pose puts it.
    mover = np.zeros(1, MOVER_DTYPE)
    mover["x"], mover["y"], mover["vx"], mover["vy"], mover["snr"] = 40.0, 60.0, 1.2, 0.9, 12.0
    for k, (frame, pose) in enumerate(zip(frames, poses, strict=True)):
        x, y = pose.apply(np.array([40.0 + 1.2 * k]), np.array([60.0 + 0.9 * k]), (200, 200))
        star = np.zeros(1, STAR_DTYPE)
        star["x"], star["y"], star["flux"] = x[0], y[0], 900.0
        frame += render_stars((200, 200), star, fwhm=seq.fwhm).astype(np.float32)
        frame[:, 150] += 40.0 + rng.normal(0, 1, 200).astype(np.float32)  # a warm column
    return frames, seq.frames[0].hot_pixels, mover


def test_defects_are_found_on_the_detector(raw):
    frames, hot, _ = raw
    mask = detector_defects(FrameSet(frames))
    assert mask[hot[:, 0], hot[:, 1]].mean() > 0.9
    assert mask[:, 150].all()
    assert mask.mean() < 0.01


def test_registered_sequence_has_the_mover_and_no_defect_tracks(raw, tmp_path):
    frames, _, mover = raw
    paths, records, mask = register_raw(frames, tmp_path, reference=0)
    assert len(paths) == N and all(r["accepted"] for r in records)
    assert records[5]["dx"] == pytest.approx(DRIFT[0] * 5, abs=0.1)
    result = find_movers([str(p) for p in paths], options=MoverOptions())
    match = match_tracks(result.tracks, mover, (N - 1) / 2, N - 1)
    assert match.recall == 1.0
    # Hot pixels and the column would drift at (-0.7, -0.45) px/frame on the sky: no such track.
    assert match.false_tracks == 0, [(t.vx, t.vy, t.snr) for t in result.tracks]


def test_movers_command_registers_raw_frames(raw, tmp_path, capsys):
    import json

    from datas_pipeline.cli.main import main
    from datas_pipeline.io.fits import write_frame

    frames, _, _ = raw
    for i, frame in enumerate(frames):
        write_frame(tmp_path / "raw" / f"raw_{i:02d}.fits", frame)
    target = tmp_path / "out.json"
    assert main(["movers", str(tmp_path / "raw"), "--register", "--json", str(target), "--quiet"]) == 0
    assert "registered 16 of 16 frames" in capsys.readouterr().err
    tracks = json.loads(target.read_text())["tracks"]
    movers_ = [t for t in tracks if t["kind"] == "mover"]
    assert len(movers_) == 1 and movers_[0]["rate_px_per_frame"] == pytest.approx(1.5, abs=0.05)
