"""``datas-pipeline extract`` reproduces SExtractor's catalogue of the sep test frame from the command line."""
import json
import shutil

import numpy as np
import pytest
from datas_pipeline.cli.main import main
from datas_pipeline.detection.sextractor_config import read_conv, read_sextractor_config

CATALOG_NAMES = ["number", "x", "y", "xwin", "ywin", "x2", "y2", "xy", "errx2", "erry2", "errxy", "a", "flux_aper",
                 "fluxerr_aper", "kron_radius", "flux_auto", "fluxerr_auto", "fr01", "fr05", "fr06", "flags"]


def compare(record, folder):
    catalog = np.genfromtxt(folder / "image.cat", names=CATALOG_NAMES)
    x = np.array([s["x"] for s in record["sources"]])
    y = np.array([s["y"] for s in record["sources"]])
    flux = np.array([s["flux"] for s in record["sources"]])
    distance = np.hypot(x[:, None] - (catalog["x"] - 1)[None], y[:, None] - (catalog["y"] - 1)[None])
    nearest = distance.argmin(axis=1)
    return catalog, distance.min(axis=1), nearest, flux


@pytest.mark.parametrize("how", ["config", "options"])
def test_the_cli_matches_sextractor_65_of_65(how, shared_data, tmp_path):
    folder = shared_data / "sep"
    out = tmp_path / "cat.json"
    if how == "config":
        settings = ["--sextractor-config", str(folder / "default.sex")]
    else:
        settings = ["--threshold", "1.5", "--min-area", "5", "--noise", "global", "--deblend-cont", "1.0",
                    "--aperture", "5"]
    assert main(["extract", str(folder / "image.fits"), "--json", str(out), *settings]) == 0
    record = json.loads(out.read_text())
    catalog, offset, nearest, flux = compare(record, folder)
    assert record["count"] == len(catalog) == 65 and len(set(nearest)) == 65
    assert (offset < 0.1).sum() == 65
    assert np.all(np.abs(flux / catalog["flux_aper"][nearest] - 1) < 1e-3)
    assert record["settings"]["noise"] == "global" and record["settings"]["deblend_cont"] == 1.0


def test_options_override_the_file_and_defaults_differ(shared_data, tmp_path):
    folder = shared_data / "sep"
    out = tmp_path / "cat.json"
    main(["extract", str(folder / "image.fits"), "--json", str(out), "--sextractor-config",
          str(folder / "default.sex"), "--threshold", "5"])
    record = json.loads(out.read_text())
    assert record["settings"]["threshold_sigma"] == 5.0 and record["count"] < 65
    main(["extract", str(folder / "image.fits"), "--json", str(out)])
    assert json.loads(out.read_text())["settings"]["noise"] == "map"


def test_reading_the_sextractor_files(shared_data, tmp_path, capsys):
    folder = shared_data / "sep"
    settings = read_sextractor_config(folder / "default.sex")
    assert settings.extract["threshold_sigma"] == 1.5 and settings.extract["aperture_radius"] == 5.0
    assert settings.extract["kron_params"] == (2.5, 0.0) and settings.extract["gain"] is None
    assert settings.background == {"box_size": 64, "filter_size": 3}
    assert np.array_equal(read_conv(folder / "default.conv"), [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert "CATALOG_NAME" in settings.ignored
    shutil.copy(folder / "default.conv", tmp_path / "default.conv")
    text = (folder / "default.sex").read_text()
    for bad, message in (("DETECT_THRESH    1.5", "DETECT_THRESH 20,30"),
                         ("BACK_SIZE        64", "BACK_SIZE 64,32"),
                         ("FILTER_NAME      default.conv", "FILTER_NAME missing.conv")):
        (tmp_path / "bad.sex").write_text(text.replace(bad, message, 1))
        code = main(["extract", str(folder / "image.fits"), "--json", str(tmp_path / "o.json"),
                     "--sextractor-config", str(tmp_path / "bad.sex")])
        assert code == 2 and capsys.readouterr().err.startswith("error: ")
    code = main(["extract", str(folder / "image.fits"), "--json", str(tmp_path / "o.json"),
                 "--sextractor-config", str(tmp_path / "nothing.sex")])
    assert code == 2 and "cannot read the SExtractor configuration" in capsys.readouterr().err
