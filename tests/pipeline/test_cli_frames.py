"""The frame commands end to end: JSON out, and a clear message with exit 2 on bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from datas_pipeline.astrometry.solve import wcs_to_header
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.cli.main import main
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.synthetic.fields import (
    catalog_stars,
    expose,
    make_detector,
    make_wcs,
    random_stars,
    read_out,
    sky_image,
)

SHAPE = (200, 200)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def bad_files(tmp_path):
    """Not FITS, truncated, and a FITS file whose data is not an image."""
    (tmp_path / "text.fits").write_text("SIMPLE = this is not FITS\n" * 20)
    full = write_frame(tmp_path / "full.fits", np.ones((300, 300), np.float32))
    (tmp_path / "truncated.fits").write_bytes(full.read_bytes()[:5000])
    full.unlink()
    fits.PrimaryHDU(np.arange(10.0)).writeto(tmp_path / "spectrum.fits")
    return [tmp_path / n for n in ("text.fits", "truncated.fits", "spectrum.fits")]


@pytest.fixture()
def session_folder(tmp_path):
    rng = np.random.default_rng(1)
    stars = random_stars(SHAPE, 70, rng, flux_range=(3e3, 2e5), margin=8)
    folder = tmp_path / "night"
    for i, changes in enumerate([{}, {"fwhm": 2.7}, {}, {"trail": (8.0, 3.0)}, {}, {"transparency": 0.25}]):
        image = expose(sky_image(SHAPE, stars, **{"sky": 150.0, "fwhm": 3.0, **changes}), rng, sky=0.0)
        write_frame(folder / f"light_{i:02d}.fits", image, fits.Header({"EXPTIME": 30.0}), dtype=np.uint16)
    return folder


def test_grade_writes_the_per_frame_record_and_the_best(capsys, session_folder, tmp_path):
    out = tmp_path / "grade.json"
    code, _, err = run(capsys, "grade", session_folder, "--json", out)
    assert code == 0, err
    record = json.loads(out.read_text())
    frames = {f["file"]: f for f in record["frames"]}
    assert record["best"] == "light_01.fits"
    assert not frames["light_03.fits"]["accepted"] and frames["light_03.fits"]["reasons"][0].startswith("trailing")
    assert not frames["light_05.fits"]["accepted"] and frames["light_05.fits"]["reasons"][0].startswith("clouds")
    for key in ("file", "accepted", "reasons", "stars", "fwhm_px", "eccentricity", "background", "noise", "weight"):
        assert key in frames["light_00.fits"]
    assert "rejected light_03.fits: trailing" in err


def test_grade_bad_input(capsys, tmp_path, session_folder):
    code, _, err = run(capsys, "grade", tmp_path / "nowhere", "--json", tmp_path / "g.json")
    assert code == 2 and "not a folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    code, _, err = run(capsys, "grade", empty, "--json", tmp_path / "g.json")
    assert code == 2 and "no FITS files" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    bad_files(broken)
    code, _, err = run(capsys, "grade", broken, "--json", tmp_path / "g.json")
    assert code == 2 and "none of the 3 files could be measured" in err
    bad_files(session_folder)  # three unreadable files among good ones: graded, and listed
    code, _, err = run(capsys, "grade", session_folder, "--json", tmp_path / "g.json")
    assert code == 0 and "skipped truncated.fits" in err
    assert len(json.loads((tmp_path / "g.json").read_text())["errors"]) == 3
    code, _, err = run(capsys, "grade", session_folder, "--json", session_folder / "light_00.fits" / "g.json")
    assert code == 2 and "cannot write" in err


@pytest.fixture()
def raw_night(tmp_path):
    rng = np.random.default_rng(2)
    detector = make_detector((120, 150), rng, overscan_columns=10)
    stars = random_stars(detector.shape, 30, rng, flux_range=(1e4, 1e5), margin=8)
    photons = sky_image(detector.shape, stars, sky=500.0)
    base = {"INSTRUME": "SimCam", "XBINNING": 1, "YBINNING": 1, "CCD-TEMP": -10.0, "EGAIN": detector.gain,
            **detector.sections()}
    folders = {}
    for kind, exposure, light, n in (("bias", 0.0, 0.0, 5), ("darks", 120.0, 0.0, 5), ("flats", 2.0, 20000.0, 5),
                                     ("lights", 60.0, photons, 2)):
        folder = tmp_path / kind
        for i in range(n):
            header = fits.Header({**base, "IMAGETYP": {"bias": "BIAS", "darks": "DARK", "flats": "FLAT",
                                                       "lights": "LIGHT"}[kind], "EXPTIME": exposure, "FILTER": "L"})
            write_frame(folder / f"{kind}_{i}.fits", read_out(detector, light, exposure, rng), header,
                        dtype=np.uint16)
        folders[kind] = folder
    return detector, photons, folders


def test_calibrate_builds_masters_and_calibrates(capsys, raw_night, tmp_path):
    detector, photons, folders = raw_night
    out = tmp_path / "out"
    code, _, err = run(capsys, "calibrate", "--lights", folders["lights"], "--bias", folders["bias"],
                       "--darks", folders["darks"], "--flats", folders["flats"], "--out", out, "--hot-pixels")
    assert code == 0, err
    report = json.loads((out / "calibration.json").read_text())
    assert len(report["masters"]) == 3 and len(report["lights"]) == 2
    light = report["lights"][0]
    assert light["applied"] == "BDF"
    assert any("scaled from 120 s to 60 s" in n for n in light["choices"]["dark"]["notes"])
    result = read_frame(light["output"]).data
    assert result.shape == detector.shape
    assert abs(np.median(result - photons / detector.gain)) < 2.0


def test_calibrate_bad_input(capsys, raw_night, tmp_path):
    _, _, folders = raw_night
    code, _, err = run(capsys, "calibrate", "--lights", tmp_path / "none", "--bias", folders["bias"], "--out",
                       tmp_path / "o")
    assert code == 2 and "not a folder of lights" in err
    code, _, err = run(capsys, "calibrate", "--lights", folders["lights"], "--out", tmp_path / "o")
    assert code == 2 and "no calibration frames" in err
    bad = tmp_path / "badbias"
    bad.mkdir()
    bad_files(bad)
    code, _, err = run(capsys, "calibrate", "--lights", folders["lights"], "--bias", bad, "--out", tmp_path / "o")
    assert code == 2 and "badbias" in err and "Traceback" not in err


def test_extract_json_and_bad_input(capsys, tmp_path):
    rng = np.random.default_rng(3)
    stars = random_stars(SHAPE, 25, rng, flux_range=(2e4, 2e5), margin=10)
    path = write_frame(tmp_path / "f.fits", expose(sky_image(SHAPE, stars), rng, sky=0.0))
    out = tmp_path / "e.json"
    code, _, err = run(capsys, "extract", path, "--json", out)
    assert code == 0, err
    record = json.loads(out.read_text())
    assert record["count"] >= 23 and {"x", "y", "flux", "fwhm"} <= set(record["sources"][0])
    blank = write_frame(tmp_path / "blank.fits", rng.normal(100, 5, SHAPE))
    assert run(capsys, "extract", blank, "--json", out)[0] == 0 and json.loads(out.read_text())["count"] == 0
    for bad in bad_files(tmp_path):
        code, _, err = run(capsys, "extract", bad, "--json", out)
        assert code == 2 and bad.name in err and "Traceback" not in err
    code, _, err = run(capsys, "extract", tmp_path / "missing.fits", "--json", out)
    assert code == 2 and "no such file" in err


def solved_field(tmp_path, rng):
    """A frame whose header carries its true WCS, and a comparison table of its stars."""
    truth = make_wcs(150.0, 20.0, 3.0, SHAPE)
    centre_x, centre_y = np.meshgrid(np.linspace(25, 175, 4), np.linspace(25, 175, 3))
    ra, dec = truth.all_pix2world(centre_x.ravel(), centre_y.ravel(), 0)
    mags = rng.uniform(9.0, 11.0, ra.size)
    catalog = np.zeros(ra.size, dtype=[("ra", "f8"), ("dec", "f8"), ("mag", "f4")])
    catalog["ra"], catalog["dec"], catalog["mag"] = ra, dec, mags
    stars = catalog_stars(truth, SHAPE, catalog, flux_at_mag0=2e9)
    image = expose(sky_image(SHAPE, stars, sky=300.0), rng, sky=0.0, gain=2.0)
    header = wcs_to_header(truth, fits.Header({"EXPTIME": 30.0, "EGAIN": 2.0, "FILTER": "V",
                                               "DATE-OBS": "2024-02-01T01:00:00"}))
    path = write_frame(tmp_path / "solved.fits", image, header)
    table = tmp_path / "comps.csv"
    lines = ["name,ra,dec,mag,check"] + [f"S{i},{r:.7f},{d:.7f},{m:.4f},{int(i == 11)}"
                                         for i, (r, d, m) in enumerate(zip(ra, dec, mags, strict=True)) if i]
    table.write_text("\n".join(lines) + "\n")
    return path, table, (ra[0], dec[0], mags[0])


def test_photometry_measures_the_target(capsys, tmp_path):
    path, table, (ra, dec, mag) = solved_field(tmp_path, np.random.default_rng(4))
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "photometry", path, "--target", ra, dec, "--comparisons", table, "--json", out)
    assert code == 0, err
    record = json.loads(out.read_text())
    assert abs(record["magnitude"] - mag) < max(3 * record["magnitude_error"], 0.01)
    assert record["method"] == "differential-ensemble" and record["filter"] == "V"
    assert len(record["comparison_stars"]) == 10 and record["check_star"]["name"] == "S11"
    assert record["time_utc"].startswith("2024-02-01T01:00:15")


def test_photometry_bad_input(capsys, tmp_path):
    path, table, (ra, dec, _) = solved_field(tmp_path, np.random.default_rng(5))
    out = tmp_path / "p.json"
    unsolved = write_frame(tmp_path / "raw.fits", read_frame(path).data, fits.Header({"EGAIN": 2.0}))
    code, _, err = run(capsys, "photometry", unsolved, "--target", ra, dec, "--comparisons", table, "--json", out)
    assert code == 2 and "solve it first" in err
    nogain = write_frame(tmp_path / "nogain.fits", read_frame(path).data,
                         wcs_to_header(WCS(read_frame(path).header)))
    code, _, err = run(capsys, "photometry", nogain, "--target", ra, dec, "--comparisons", table, "--json", out)
    assert code == 2 and "--gain" in err
    code, _, err = run(capsys, "photometry", path, "--target", "10", "80", "--comparisons", table, "--json", out)
    assert code == 2 and "off the frame" in err
    code, _, err = run(capsys, "photometry", path, "--target", "abc", dec, "--comparisons", table, "--json", out)
    assert code == 2 and "not a RA" in err
    (tmp_path / "nomag.csv").write_text("ra,dec\n1,2\n")
    code, _, err = run(capsys, "photometry", path, "--target", ra, dec, "--comparisons", tmp_path / "nomag.csv",
                       "--json", out)
    assert code == 2 and "no magnitude column" in err


def test_solve_bad_input(capsys, tmp_path):
    out = tmp_path / "s.json"
    for bad in bad_files(tmp_path):
        code, _, err = run(capsys, "solve", bad, "--json", out)
        assert code == 2 and bad.name in err
    blank = write_frame(tmp_path / "blank.fits", np.random.default_rng(0).normal(100, 5, SHAPE))
    code, _, err = run(capsys, "solve", blank, "--json", out)
    assert code == 2 and "at least 5" in err
    code, _, err = run(capsys, "solve", blank, "--ra", "10", "--json", out)
    assert code == 2 and "both --ra and --dec" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["solve", str(blank), "--dec", "95", "--json", str(out)])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_solve_writes_the_wcs_into_the_header(tmp_path):
    truth = make_wcs(56.75, 24.12, 14.0, (512, 512), rotation_deg=-40.0)
    stars = catalog_stars(truth, (512, 512), tycho2_cone(56.75, 24.12, 2.5), flux_at_mag0=3e8)
    image = expose(sky_image((512, 512), stars, sky=100.0, fwhm=2.5), np.random.default_rng(9), sky=0.0)
    header = fits.Header({"RA": 56.9, "DEC": 24.0, "FOCALLEN": 200.0, "XPIXSZ": 14.0 * 200.0 / 206.265})
    path = write_frame(tmp_path / "pleiades.fits", image, header, dtype=np.uint16)
    out = tmp_path / "s.json"
    # Through a real process: the exit status and a clean stderr are what a script sees.
    done = subprocess.run([sys.executable, "-m", "datas_pipeline", "solve", str(path), "--json", str(out),
                           "--cpu-limit", "20", "--timeout", "60"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["solved"] and abs(record["pixel_scale_arcsec"] - 14.0) < 0.02
    assert abs(record["rotation_deg"] - 320.0) < 0.1 and record["seconds"] < 30
    written = WCS(fits.getheader(path))
    gy, gx = np.mgrid[0:512:32, 0:512:32]
    sky = written.all_pix2world(gx.ravel(), gy.ravel(), 0)
    tx, ty = truth.all_world2pix(*sky, 0)
    assert np.hypot(tx - gx.ravel(), ty - gy.ravel()).max() < 0.3
    assert fits.getheader(path)["PLTSOLVD"] is True


def test_masters_are_built_per_set_up_and_exposure(capsys, raw_night, tmp_path):
    detector, _, folders = raw_night
    rng = np.random.default_rng(6)
    extra = {"INSTRUME": "SimCam", "XBINNING": 1, "YBINNING": 1, "CCD-TEMP": -10.0, **detector.sections()}
    for i in range(3):  # 60 s darks beside the 120 s ones, and 2x2-binned darks of another shape
        write_frame(folders["darks"] / f"d60_{i}.fits", read_out(detector, 0.0, 60.0, rng),
                    fits.Header({**extra, "IMAGETYP": "DARK", "EXPTIME": 60.0}), dtype=np.uint16)
        write_frame(folders["darks"] / f"bin2_{i}.fits", rng.normal(1000, 5, (60, 80)),
                    fits.Header({"INSTRUME": "SimCam", "XBINNING": 2, "YBINNING": 2, "IMAGETYP": "DARK",
                                 "EXPTIME": 60.0}), dtype=np.uint16)
    out = tmp_path / "out"
    code, _, err = run(capsys, "calibrate", "--lights", folders["lights"], "--bias", folders["bias"],
                       "--darks", folders["darks"], "--out", out)
    assert code == 0, err
    names = sorted(p.name for p in (out / "masters").iterdir())
    assert len([n for n in names if n.startswith("master_dark")]) == 3, names
    choice = json.loads((out / "calibration.json").read_text())["lights"][0]["choices"]["dark"]
    assert "dark_60.0s_SimCam_1x1" in choice["master"] and not choice["notes"]
    assert any("binning 2x2 differs" in r for r in choice["refused"])


def test_numeric_options_are_checked(capsys, tmp_path):
    frame = write_frame(tmp_path / "f.fits", np.ones((64, 64), np.float32))
    for argv in (("extract", frame, "--max-sources", "-5"), ("extract", frame, "--min-area", "-3"),
                 ("extract", frame, "--min-area", "0"), ("extract", frame, "--threshold", "nan"),
                 ("solve", frame, "--tweak-order", "0")):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "must be" in err or "not a finite number" in err, err
    from datas_pipeline.detection.extract import extract_sources
    from datas_pipeline.errors import PipelineError

    with pytest.raises(PipelineError, match="max_sources"):
        extract_sources(np.ones((64, 64), np.float32), max_sources=-5)
    with pytest.raises(PipelineError, match="min_area"):
        extract_sources(np.ones((64, 64), np.float32), min_area=-3)


def test_photometry_comparison_mag_err_must_be_a_number(capsys, tmp_path):
    path, table, (ra, dec, _) = solved_field(tmp_path, np.random.default_rng(5))
    lines = table.read_text().splitlines()
    bad = [lines[0] + ",mag_err"] + [line + ",0.01" for line in lines[1:]]
    bad[3] = lines[3] + ",abc"
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n")
    code, _, err = run(capsys, "photometry", path, "--target", ra, dec, "--comparisons", tmp_path / "bad.csv",
                       "--json", tmp_path / "p.json")
    assert code == 2 and "row 3" in err and "'abc'" in err
