"""``datas-pipeline movers``: the JSON layout, the report, the MPC and ADES files, bad input."""
import json
import re
import xml.etree.ElementTree as ET

import pytest
from astropy.io import fits
from datas_pipeline.cli.main import main
from datas_pipeline.io.fits import write_frame
from datas_pipeline.movers.synthetic import make_mover_sequence
from PIL import Image

from .conftest import movers

TRUTH = movers([(40.0, 50.0, 1.5, 0.8, 8.0), (150.0, 160.0, -0.6, 0.4, 10.0)])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("movers")
    seq = make_mover_sequence(16, (192, 192), TRUTH, seed=14, trail_frames=(4,))
    for i, (frame, header) in enumerate(zip(seq.frames, seq.headers, strict=True)):
        write_frame(root / "frames" / f"light_{i:03d}.fits", frame, header)
    return root


def test_movers_command_writes_json_report_mpc_and_ades(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["movers", str(folder / "frames"), "--json", str(out / "movers.json"), "--report", str(out / "report"),
                 "--mpc", str(out / "obs.mpc"), "--ades", str(out / "obs.xml"), "--longitude", "8.5",
                 "--latitude", "47.25", "--altitude", "500", "--observer", "A. Observer"])
    assert code == 0
    err = capsys.readouterr().err
    assert "2 movers and 1 streaks in 16 frames" in err
    record = json.loads((out / "movers.json").read_text())
    assert set(record) == {"tracks", "frames", "parameters"}
    movers_ = [t for t in record["tracks"] if t["kind"] == "mover"]
    streaks = [t for t in record["tracks"] if t["kind"] == "streak"]
    assert len(movers_) == 2 and len(streaks) == 1
    for track in record["tracks"]:
        assert {"kind", "positions", "rate_px_per_frame", "angle_deg", "snr"} <= set(track)
        for p in track["positions"]:
            assert {"file", "x", "y", "ra", "dec", "time"} <= set(p)
            assert re.fullmatch(r"light_\d{3}\.fits", p["file"])
            assert p["ra"] is not None and p["time"].endswith("Z")
    fast = max(movers_, key=lambda t: t["rate_px_per_frame"])
    assert fast["rate_px_per_frame"] == pytest.approx(1.7, abs=0.05)
    first = fast["positions"][0]
    assert first["file"] == "light_000.fits"
    assert first["x"] == pytest.approx(40.0, abs=0.3) and first["y"] == pytest.approx(50.0, abs=0.3)
    assert len(record["frames"]) == 16 and record["parameters"]["time_source"] == "header"

    page = (out / "report" / "index.html").read_text()
    assert "Moving objects" in page and "Rejected frames" in page
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:image/") for s in sources)
    assert "http" not in page and "<script" not in page
    gif = Image.open(out / "report" / "M0001_object_centric.gif")
    assert gif.n_frames == 16
    assert Image.open(out / "report" / "M0001_star_centric.gif").n_frames == 16

    lines = (out / "obs.mpc").read_text().splitlines()
    assert lines[0] == "COD XXX" and lines[1].startswith("COM Long. 8 30 00 E, Lat. 47 15 00 N")
    records = [line for line in lines if len(line) == 80]
    assert len(records) == 32 and all(line[77:80] == "XXX" for line in records)
    root = ET.parse(out / "obs.xml").getroot()
    assert len(root.findall("obsBlock/obsData/optical")) == 32


def test_autotune_flag_records_its_curve(folder, tmp_path, capsys):
    target = tmp_path / "tuned.json"
    assert main(["movers", str(folder / "frames"), "--json", str(target), "--autotune", "--quiet"]) == 0
    assert "auto-tune: score threshold" in capsys.readouterr().err
    tuned = json.loads(target.read_text())["parameters"]["autotune"]
    assert tuned["injected"] == 16 and len(tuned["curve"]) == 6
    assert json.loads(target.read_text())["parameters"]["score_threshold"] == tuned["score"]


def test_ades_psv_by_extension(folder, tmp_path):
    target = tmp_path / "obs.psv"
    assert main(["movers", str(folder / "frames"), "--ades", str(target), "--code", "G96", "--quiet"]) == 0
    assert target.read_text().startswith("# version=2022")


def test_bad_input(folder, tmp_path, capsys):
    assert main(["movers", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["movers", str(tmp_path / "empty"), "--quiet"]) == 2
    assert "no FITS frames" in capsys.readouterr().err
    few = sorted((folder / "frames").iterdir())[:3]
    assert main(["movers", *map(str, few), "--quiet"]) == 2
    assert "at least 5" in capsys.readouterr().err
    assert main(["movers", str(folder / "frames"), "--mpc", str(tmp_path / "o.mpc"), "--quiet"]) == 2
    assert "XXX code needs" in capsys.readouterr().err
    plain = tmp_path / "plain"
    for i, path in enumerate(sorted((folder / "frames").iterdir())[:6]):
        frame = fits.getdata(path)
        write_frame(plain / f"p{i}.fits", frame, fits.Header({"EXPTIME": 10.0}))
    assert main(["movers", str(plain), "--ades", str(tmp_path / "o.xml"), "--code", "G96", "--quiet"]) == 2
    assert "no WCS" in capsys.readouterr().err


def test_json_writer_for_a_task(tmp_path):
    from datas_pipeline.movers import find_movers, write_movers_json
    from datas_pipeline.movers.synthetic import make_mover_sequence

    seq = make_mover_sequence(8, (96, 96), movers([(20.0, 30.0, 3.0, 2.0, 15.0)]), seed=2)
    result = find_movers(seq.frames, headers=seq.headers, wcs=seq.wcs)
    record = json.loads(write_movers_json(tmp_path / "task" / "movers.json", result, seq.wcs).read_text())
    assert [t["kind"] for t in record["tracks"]] == ["mover"]
    assert record["tracks"][0]["positions"][0]["ra"] == pytest.approx(result.tracks[0].positions[0]["ra"])
