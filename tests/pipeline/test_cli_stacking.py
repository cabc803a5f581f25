"""The register, stack, color, stretch and livestack commands, including bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.cli.main import main
from datas_pipeline.io.fits import write_frame
from datas_pipeline.synthetic.sequence import Pose, make_sequence
from PIL import Image

POSES = [Pose(), Pose(4.3, -2.1, 0.3), Pose(-3.7, 5.2, -0.4), Pose(2.0, 2.0, 0.1), Pose(1.1, -0.9, 0.2)]


@pytest.fixture(scope="module")
def lights(tmp_path_factory):
    root = tmp_path_factory.mktemp("lights")
    seq = make_sequence(len(POSES), (200, 200), n_stars=90, seed=71, poses=POSES, cloudy_frames=(3,),
                        cosmic_rays_per_frame=10)
    paths = []
    for i, frame in enumerate(seq.frames):
        header = fits.Header({"EXPTIME": 60.0, "FILTER": "R"})
        paths.append(write_frame(root / f"light_{i:02d}.fits", frame.data, header))
    return seq, paths


def test_register_writes_frames_and_json(lights, tmp_path, capsys):
    seq, paths = lights
    out = tmp_path / "reg"
    code = main(["register", str(paths[0]), *map(str, paths), "--out", str(out), "--json", "-", "--quiet"])
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["accepted"] for r in records] == [True, True, True, False, True]
    assert "stars" in records[3]["reason"]
    for key in ("file", "accepted", "reason", "dx", "dy", "rotation_deg", "scale", "inliers", "rms_px"):
        assert key in records[1]
    assert records[1]["dx"] == pytest.approx(4.3, abs=0.05) and records[1]["dy"] == pytest.approx(-2.1, abs=0.05)
    header = fits.getheader(out / "r_light_01.fits")
    assert header["REGINLI"] > 20 and header["FILTER"] == "R"
    assert not (out / "r_light_03.fits").exists()


def test_register_bad_input(lights, tmp_path, capsys):
    _, paths = lights
    assert main(["register", str(tmp_path / "nope.fits"), str(paths[1]), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.fits"
    junk.write_text("garbage")
    code = main(["register", str(paths[0]), str(paths[1]), str(junk), "--out", str(tmp_path / "o"),
                 "--json", str(tmp_path / "r.json"), "--quiet"])
    assert code == 1
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[1]["accepted"] is False and "not a readable FITS" in records[1]["reason"]
    with pytest.raises(SystemExit) as exc:
        main(["register", str(paths[0]), str(paths[1]), "--out", str(tmp_path), "--kind", "homography"])
    assert exc.value.code == 2


def test_stack_per_filter_masters(lights, tmp_path, capsys):
    _, paths = lights
    reg = tmp_path / "reg"
    main(["register", str(paths[0]), *map(str, paths), "--out", str(reg), "--quiet"])
    registered = sorted(reg.glob("r_*.fits"))
    g_frame = tmp_path / "g.fits"
    data = fits.getdata(registered[0])
    write_frame(g_frame, data, fits.Header({"FILTER": "G", "EXPTIME": 60.0}))
    capsys.readouterr()
    code = main(["stack", *map(str, registered), str(g_frame), "--method", "sigma", "--out", str(tmp_path / "m.fits"),
                 "--memory", "64MB", "--weights", "noise", "--json", "-", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert {s["filter"] for s in summary} == {"R", "G"}
    with fits.open(tmp_path / "m_R.fits") as hdul:
        assert hdul[0].header["NCOMBINE"] == 4 and hdul[0].header["STACKMTH"] == "sigma"
        assert hdul[0].header["TOTEXP"] == 240.0
        assert hdul["COUNT"].data.max() == 4
    assert (tmp_path / "m_G.fits").exists()


def test_stack_bad_input(lights, tmp_path, capsys):
    _, paths = lights
    assert main(["stack", str(paths[0]), "--out", str(tmp_path / "m.fits"), "--memory", "lots"]) == 2
    assert "cannot read memory size" in capsys.readouterr().err
    assert main(["stack", str(tmp_path / "missing.fits"), "--out", str(tmp_path / "m.fits")]) == 2
    other = write_frame(tmp_path / "small.fits", np.zeros((50, 50), np.float32), fits.Header({"FILTER": "R"}))
    assert main(["stack", str(paths[0]), str(other), "--out", str(tmp_path / "m.fits"), "--quiet"]) == 2
    assert "differ in size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stack", str(paths[0]), "--out", str(tmp_path / "m.fits"), "--method", "average"])


def test_color_and_stretch(lights, tmp_path, capsys):
    seq, paths = lights
    masters = []
    for name, factor in (("r", 0.7), ("g", 1.0), ("b", 1.3)):
        masters.append(write_frame(tmp_path / f"{name}.fits", seq.frames[0].data * factor))
    code = main(["color", "--r", str(masters[0]), "--g", str(masters[1]), "--b", str(masters[2]),
                 "--out", str(tmp_path / "rgb.png"), "--json", "-"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["white_balance"][0] == pytest.approx(1 / 0.7, rel=0.03)
    with Image.open(tmp_path / "rgb.png") as png:
        assert png.mode == "RGB"
    assert main(["color", "--r", str(masters[0]), "--g", str(masters[1]), "--out", str(tmp_path / "x.png")]) == 2
    assert "--b" in capsys.readouterr().err
    assert main(["stretch", str(paths[0]), "--out", str(tmp_path / "s.png"), "--bits", "16", "--max-size", "100"]) == 0
    with Image.open(tmp_path / "s.png") as png:
        assert png.size == (100, 100) and png.mode.startswith("I;16")
    assert main(["stretch", str(tmp_path / "none.fits"), "--out", str(tmp_path / "s.png")]) == 2
    assert main(["stretch", str(paths[0]), "--out", str(tmp_path / "s.gif")]) == 2
    assert "unknown image type" in capsys.readouterr().err


def test_livestack_watches_a_folder(lights, tmp_path, capsys):
    _, paths = lights
    folder = tmp_path / "incoming"
    folder.mkdir()
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    code = main(["livestack", str(folder), "--once", "--preview", str(tmp_path / "live.png"),
                 "--out", str(tmp_path / "live.fits"), "--json", "-"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["accepted"] for line in lines] == [True, True, True, False, True]
    assert lines[-1]["frames_stacked"] == 4 and lines[-1]["snr_gain"] == pytest.approx(2.0)
    assert (tmp_path / "live.png").exists()
    assert fits.getheader(tmp_path / "live.fits")["NCOMBINE"] == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["livestack", str(empty), "--once"]) == 2
    assert "could start a stack" in capsys.readouterr().err
    assert main(["livestack", str(tmp_path / "nowhere"), "--once"]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_stack_groups_compressed_lights_by_filter(lights, tmp_path, capsys):
    # A .fz light keeps FILTER in its compressed extension, not the (empty) primary header.
    seq, _ = lights
    frames = []
    for i, name in enumerate("RRGG"):
        header = fits.Header({"EXPTIME": 30.0, "FILTER": name})
        frames.append(write_frame(tmp_path / f"l{i}.fits.fz", seq.frames[0].data, header))
    assert fits.getheader(frames[0]).get("FILTER") is None
    code = main(["stack", *map(str, frames), "--method", "mean", "--out", str(tmp_path / "m.fits"),
                 "--json", "-", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert sorted((s["filter"], s["frames"]) for s in summary) == [("G", 2), ("R", 2)]
    for name in "RG":
        header = fits.getheader(tmp_path / f"m_{name}.fits")
        assert header["NCOMBINE"] == 2 and header["FILTER"] == name and header["TOTEXP"] == 60.0


def test_unwritable_outputs_fail_with_a_message(lights, tmp_path, capsys):
    _, paths = lights
    blocker = tmp_path / "a.fits"
    blocker.write_bytes(paths[0].read_bytes())
    bad = str(blocker / "x.json")
    commands = [
        ["stack", str(paths[0]), str(paths[1]), "--out", str(blocker / "m.fits"), "--quiet"],
        ["stack", str(paths[0]), str(paths[1]), "--out", str(tmp_path / "m.fits"), "--json", bad, "--quiet"],
        ["register", str(paths[0]), str(paths[1]), "--out", str(tmp_path / "reg"), "--json", bad, "--quiet"],
        ["register", str(paths[0]), str(paths[1]), "--out", str(blocker / "reg"), "--quiet"],
        ["livestack", str(tmp_path / "reg"), "--once", "--json", bad],
        ["stretch", str(paths[0]), "--out", str(blocker / "o.png")],
        ["color", "--r", str(paths[0]), "--g", str(paths[0]), "--b", str(paths[0]), "--no-register",
         "--out", str(tmp_path / "c.png"), "--fits", str(blocker / "x.fits")],
    ]
    for command in commands:
        capsys.readouterr()
        assert main(command) == 2, command
        assert "cannot write" in capsys.readouterr().err, command
    # Checked before stacking: no master was computed and written elsewhere.
    assert not (tmp_path / "m.fits").exists()


def test_stack_refuses_bad_limits_before_stacking(lights, tmp_path, capsys):
    _, paths = lights
    for low, high in (("-1", "3"), ("3", "nan"), ("inf", "3"), ("x", "3")):
        with pytest.raises(SystemExit) as exc:
            main(["stack", str(paths[0]), "--out", str(tmp_path / "m.fits"), "--low", low, "--high", high])
        assert exc.value.code == 2
    assert not (tmp_path / "m.fits").exists()
    from datas_pipeline.errors import StackingError
    from datas_pipeline.stacking.combine import StackOptions, stack_frames

    with pytest.raises(StackingError, match="finite"):
        stack_frames([np.zeros((4, 4))] * 3, StackOptions(high=float("nan")))


def test_register_blank_reference_and_a_tiny_frame(lights, tmp_path, capsys):
    _, paths = lights
    blank = write_frame(tmp_path / "blank.fits", np.full((200, 200), 100.0, np.float32))
    assert main(["register", str(blank), *map(str, paths[:2]), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "stars found in the reference" in capsys.readouterr().err
    tiny = write_frame(tmp_path / "tiny.fits", np.random.default_rng(1).normal(100, 5, (20, 20)).astype(np.float32))
    code = main(["register", str(paths[0]), str(tiny), str(paths[1]), "--out", str(tmp_path / "o"),
                 "--json", "-", "--quiet"])
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["accepted"] for r in records] == [False, True]
    assert records[0]["file"] == str(tiny) and records[0]["reason"]


def test_every_fits_name_is_seen_by_grade_and_livestack(lights, tmp_path, capsys):
    _, paths = lights
    folder = tmp_path / "night"
    names = ("A1.FIT", "a2.fits.fz", "a3.fts")
    for name, path in zip(names, paths, strict=False):
        write_frame(folder / name, fits.getdata(path), fits.Header({"EXPTIME": 60.0}))
    (folder / "notes.txt").write_text("not a frame")
    capsys.readouterr()
    assert main(["livestack", str(folder), "--once", "--json", "-"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(Path(line["source"]).name for line in lines) == sorted(names)
    assert main(["grade", str(folder), "--json", str(tmp_path / "g.json")]) == 0
    record = json.loads((tmp_path / "g.json").read_text())
    assert sorted(f["file"] for f in record["frames"]) == sorted(names)


def test_a_refused_registration_reports_only_its_reason(lights, tmp_path, capsys):
    _, paths = lights
    main(["register", str(paths[0]), str(paths[3]), "--out", str(tmp_path / "reg"), "--json", "-", "--quiet"])
    (refused,) = json.loads(capsys.readouterr().out)
    assert refused["accepted"] is False and refused["reason"]
    assert set(refused) == {"file", "accepted", "reason"}
