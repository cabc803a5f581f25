"""``datas-agent livestack`` and the running agent's live view, on seeded synthetic frames."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits
from datas_agent.cli import main
from datas_agent.config import load_config
from datas_agent.errors import ConfigError
from datas_agent.livestack import TargetLiveStacks
from datas_pipeline.synthetic.sequence import Pose, make_sequence
from PIL import Image

from tests.agent.conftest import agent_env, write_config
from tests.agent.fake_portal import FakePortal
from tests.agent.test_loop import make_agent, night_targets

POSES = [Pose(), Pose(3.2, -1.7, 0.4), Pose(-5.1, 2.2, -0.6), Pose(1.0, 1.0, 0.2), Pose(4.4, 4.1, 0.3),
         Pose(-2.5, 3.3, -0.4), Pose(0.5, -4.0, 0.1), Pose(2.0, 2.0, 0.0)]
CLOUDY = 3


@pytest.fixture(scope="module")
def sequence():
    return make_sequence(len(POSES), (256, 256), n_stars=120, seed=61, poses=POSES, cloudy_frames=(CLOUDY,),
                         cloud_transparency=0.02)


def write_frames(folder, frames, target="SS Cyg", filter_name="V", start=0):
    """Write frames as FITS with OBJECT/FILTER, their mtimes in order (the watch order)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames, start):
        header = fits.Header({"OBJECT": target, "FILTER": filter_name, "EXPTIME": 10.0})
        path = folder / f"{target.replace(' ', '')}_{filter_name}_{i:03d}.fits"
        fits.PrimaryHDU(frame.data, header=header).writeto(path)
        paths.append(path)
    return paths


def json_reports(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_one_shot_previews_after_every_n_frames_and_refuses_the_clouded_one(sequence, tmp_path, capsys):
    write_frames(tmp_path / "in", sequence.frames)
    code = main(["livestack", str(tmp_path / "in"), "--once", "--every", "3", "--json", "--save-fits",
                 "--out-dir", str(tmp_path / "live")])
    out, err = capsys.readouterr()
    assert code == 0, err
    reports = json_reports(out)
    assert len(reports) == 8 and all((r["target"], r["filter"]) == ("SS Cyg", "V") for r in reports)
    cloudy = reports[CLOUDY]
    assert not cloudy["accepted"] and "stars" in cloudy["reason"] and "clouds" in cloudy["reason"]
    assert f"refused: {cloudy['reason']}" in err
    assert [r["frames_stacked"] for r in reports] == [1, 2, 3, 3, 4, 5, 6, 7]
    # A preview after the 3rd and the 6th accepted frame, and the last one when the run ends.
    assert [i for i, r in enumerate(reports) if r["preview"]] == [2, 6]
    preview = tmp_path / "live" / "SS_Cyg_V.png"
    assert reports[2]["preview"] == str(preview) and f"preview {preview}" in err
    with Image.open(preview) as image:
        assert image.size == (256, 256) and image.mode == "L"
        pixels = np.asarray(image)
    assert pixels.std() > 5  # stretched: stars and sky, not a blank frame
    stack = fits.open(tmp_path / "live" / "SS_Cyg_V.fits")
    assert stack[0].header["NCOMBINE"] == 7 and stack[0].header["LSREJECT"] == 1
    assert stack[0].header["OBJECT"] == "SS Cyg"
    # The stack is deeper than one frame: its background noise is about sqrt(7) lower.
    single = sequence.frames[0].data[20:80, 20:80]
    deep = stack[0].data[20:80, 20:80]
    ratio = (1.4826 * np.median(np.abs(single - np.median(single)))) / (
        1.4826 * np.median(np.abs(deep - np.median(deep))))
    assert ratio > 2.0


def test_one_stack_per_target_and_filter_and_selection(sequence, tmp_path, capsys):
    frames = [f for i, f in enumerate(sequence.frames) if i != CLOUDY]
    write_frames(tmp_path / "in", frames[:4], "SS Cyg", "V")
    write_frames(tmp_path / "in" / "20250101", frames[4:], "SS Cyg", "B")  # a date folder, as the agent writes
    assert main(["livestack", str(tmp_path / "in"), "--once", "--every", "2", "--json", "--recursive"]) == 0
    reports = json_reports(capsys.readouterr().out)
    last = {(r["target"], r["filter"]): r["frames_stacked"] for r in reports}
    assert last == {("SS Cyg", "V"): 4, ("SS Cyg", "B"): 3}
    assert sorted(p.name for p in (tmp_path / "in" / "livestack").iterdir()) == ["SS_Cyg_B.png", "SS_Cyg_V.png"]
    # --filter keeps to one stack; a second run does not feed the previews back in.
    assert main(["livestack", str(tmp_path / "in"), "--once", "--json", "--recursive", "--filter", "b"]) == 0
    reports = json_reports(capsys.readouterr().out)
    assert {r["filter"] for r in reports} == {"B"} and reports[-1]["frames_stacked"] == 3


def test_bad_input_ends_in_a_clear_message(sequence, tmp_path, capsys):
    assert main(["livestack", str(tmp_path / "nowhere"), "--once"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "broken.fits").write_bytes(b"SIMPLE  = not really a FITS file")
    write_frames(junk, [sequence.frames[CLOUDY]])  # clouds only: no reference possible
    assert main(["livestack", str(junk), "--once", "--json"]) == 1
    captured = capsys.readouterr()
    reports = json_reports(captured.out)
    assert len(reports) == 2 and not any(r["accepted"] for r in reports)
    assert "no frame in" in captured.err and "could start a stack" in captured.err
    assert main(["livestack", str(tmp_path / "nowhere"), "--target", "X", "--once"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["livestack", str(junk), "--every", "0"])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_watch_mode_stacks_frames_as_they_arrive(sequence, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    preview = incoming / "livestack" / "SS_Cyg_V.png"
    proc = subprocess.Popen([sys.executable, "-m", "datas_agent", "livestack", str(incoming), "--every", "2",
                             "--poll", "0.1", "--idle-timeout", "4", "--json"],
                            env=agent_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def wait_for_lines(n, timeout=30.0):
            lines = []
            deadline = time.monotonic() + timeout
            while len(lines) < n and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(json.loads(line))
            return lines

        write_frames(incoming, sequence.frames[:1])
        first = wait_for_lines(1)
        assert first[0]["accepted"] and first[0]["preview"] is None and not preview.exists()
        write_frames(incoming, sequence.frames[1:2], start=1)
        second = wait_for_lines(1)
        assert second[0]["frames_stacked"] == 2 and second[0]["preview"] == str(preview) and preview.exists()
        write_frames(incoming, sequence.frames[2:4], start=2)
        more = wait_for_lines(2)
        assert [r["accepted"] for r in more] == [True, False] and "clouds" in more[1]["reason"]
        out, err = proc.communicate(timeout=30)  # ends by itself after 4 s without frames
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"preview {preview}" in err  # the third frame's preview, written as the watch ends


def test_stacks_in_memory_are_bounded_and_closed_with_a_preview(sequence, tmp_path):
    stacks = TargetLiveStacks(tmp_path, preview_every=10, max_stacks=1)
    paths = write_frames(tmp_path / "in", sequence.frames[:2])
    assert stacks.add(paths[0], "A", "V").frame.accepted
    assert not (tmp_path / "A_V.png").exists()
    stacks.add(paths[1], "B", "V")      # A makes room, and gets its preview on the way out
    assert (tmp_path / "A_V.png").exists() and list(stacks.stacks) == [("B", "V")]
    assert stacks.close() == [tmp_path / "B_V.png"]
    with pytest.raises(ValueError, match="at least 1"):
        TargetLiveStacks(tmp_path, preview_every=0)


LIVE_CONFIG = "livestack:\n  enabled: true\n  preview_every: 2\n  save_fits: true\n"


def three_frame_targets():
    targets = night_targets()[:1]
    targets[0]["observation_requirements"] = {"filters": ["V"], "exposure_sec": 5, "frames": 3}
    return targets


def test_the_running_agent_live_stacks_what_it_observes(tmp_path):
    with FakePortal(targets=three_frame_targets()) as portal:
        agent, config = make_agent(tmp_path, portal, extra=LIVE_CONFIG)
        report = agent.cycle()
        agent.live_view.close()
        agent.rig.close()
    assert len(report.observed) == 3 and len(portal.observations) == 3
    preview = config.data_dir / "livestack" / "Zenith_var_V.png"
    assert preview.exists()
    stack = fits.getheader(preview.with_suffix(".fits"))
    assert stack["NCOMBINE"] == 3 and stack["OBJECT"] == "Zenith var"


def test_a_failing_live_stack_never_stops_observing(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise MemoryError("no room for the stack")

    monkeypatch.setattr(TargetLiveStacks, "add", broken)
    with FakePortal(targets=three_frame_targets()) as portal:
        agent, config = make_agent(tmp_path, portal, extra=LIVE_CONFIG)
        report = agent.cycle()
        agent.rig.close()
    assert len(report.observed) == 3 and set(portal.observations) == set(report.observed)
    assert agent.outbox.counts()["pending"] == 0


def test_livestack_settings_are_validated(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:1", extra="livestack:\n  enabled: maybe\n  preview_every: 0\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "livestack.enabled: expected bool" in str(error.value)
    assert "livestack.preview_every: 0 is below the minimum 1" in str(error.value)
    config = load_config(write_config(tmp_path, "http://127.0.0.1:1"))
    assert not config.livestack.enabled and config.livestack_dir == config.data_dir / "livestack"
