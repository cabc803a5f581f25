"""Pointings on the sphere (DBSCAN, haversine) and calibration sets with reasons."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.archive.calibration import CalibrationFile, calibrate_light, group_calibration
from datas_pipeline.archive.cluster import cluster_pointings
from datas_pipeline.io.headers import normalise_header


def _mosaic(rng, rows=3, columns=2, per_panel=6, fov=0.7, step=0.6, dec0=40.0):
    ra, dec, truth = [], [], []
    for r in range(rows):
        for c in range(columns):
            d = dec0 + r * step
            for _ in range(per_panel):
                ra.append(100.0 + c * step / np.cos(np.radians(d)) + rng.normal(0, 0.02 * fov))
                dec.append(d + rng.normal(0, 0.02 * fov))
                truth.append(r * columns + c)
    return np.array(ra), np.array(dec), np.array(truth)


def test_mosaic_panels_separate_and_dithers_stay_together():
    ra, dec, truth = _mosaic(np.random.default_rng(3))
    clusters = cluster_pointings(ra, dec, np.full(len(ra), 0.7), np.zeros(len(ra)))
    assert len(clusters) == 6
    for c in clusters:
        assert len({truth[i] for i in c.members}) == 1 and len(c.members) == 6


def test_meridian_flip_stays_a_rotation_change_splits():
    rng = np.random.default_rng(4)
    ra = 50 + rng.normal(0, 0.01, 8)
    dec = 10 + rng.normal(0, 0.01, 8)
    flipped = np.array([0.2, 180.1, 0.0, 179.8, 0.3, 180.0, 45.0, 45.5])
    clusters = cluster_pointings(ra, dec, np.full(8, 0.7), flipped)
    assert sorted(len(c.members) for c in clusters) == [2, 6]
    turned = next(c for c in clusters if len(c.members) == 2)
    assert turned.rotation_deg == pytest.approx(45.25, abs=0.1)


def test_across_ra_zero_and_at_the_pole():
    ra = np.array([359.95, 0.05, 359.99, 120.0, 300.0])
    dec = np.array([0.0, 0.01, -0.02, 89.95, 89.96])
    clusters = cluster_pointings(ra, dec, np.full(5, 0.7))
    assert sorted(len(c.members) for c in clusters) == [2, 3]  # 3 across RA 0, 2 across the pole
    wrap = next(c for c in clusters if len(c.members) == 3)
    assert min(wrap.ra_deg, 360 - wrap.ra_deg) < 0.05


def test_unknown_rotation_joins_the_nearest_pointing():
    ra = np.array([10.0, 10.01, 10.02, 11.0])
    dec = np.array([5.0, 5.01, 5.0, 5.0])
    clusters = cluster_pointings(ra, dec, np.full(4, 0.7), [0.0, 0.5, np.nan, np.nan])
    assert sorted(len(c.members) for c in clusters) == [1, 3]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same length"):
        cluster_pointings([1.0], [1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="positive field"):
        cluster_pointings([1.0], [1.0], [0.0])


def _file(i, kind, temp, exposure=None, filter_name=None, gain=100):
    header = fits.Header({"IMAGETYP": kind, "INSTRUME": "Cam", "XBINNING": 1, "YBINNING": 1, "GAIN": gain,
                          "OFFSET": 10, "CCD-TEMP": temp, "EXPTIME": exposure or 0.0,
                          "DATE-OBS": "2025-12-01T20:00:00"})
    if filter_name:
        header["FILTER"] = filter_name
    return CalibrationFile(i, f"/nas/{kind}_{i}.fits", kind, normalise_header(header), (64, 64))


def _light(temp, exposure, filter_name, gain=100):
    return normalise_header(fits.Header({
        "IMAGETYP": "LIGHT", "INSTRUME": "Cam", "XBINNING": 1, "YBINNING": 1, "GAIN": gain, "OFFSET": 10,
        "CCD-TEMP": temp, "EXPTIME": exposure, "FILTER": filter_name, "DATE-OBS": "2025-12-01T22:00:00"}))


def test_calibration_sets_and_choices_with_reasons():
    files = ([_file(i, "dark", -10.2 + 0.2 * (i % 3), 300) for i in range(3)]
             + [_file(10 + i, "dark", -19.8, 300) for i in range(3)]
             + [_file(20 + i, "dark", -10.0, 120) for i in range(3)]
             + [_file(30 + i, "flat", -10.0, 2, "Ha") for i in range(3)]
             + [_file(40 + i, "flat", -10.0, 2, "OIII") for i in range(2)]
             + [_file(50 + i, "bias", -10.0) for i in range(3)])
    sets = group_calibration(files)
    assert sorted(len(s.files) for s in sets) == [2, 3, 3, 3, 3, 3]
    chosen = calibrate_light(_light(-10.4, 300, "Ha"), (64, 64), sets)
    assert {f.id for f in chosen.sets["dark"].files} == {0, 1, 2}
    assert {f.id for f in chosen.sets["flat"].files} == {30, 31, 32}
    record = chosen.as_dict()
    assert "within 1 C" in record["dark"]["reason"] and "exposure 300 s" in record["dark"]["reason"]
    assert any("-19.8" in r or "-20" in r for r in record["dark"]["refused"])
    # The -10 C darks have a bias of their temperature: combined bias-subtracted, so the
    # light takes that bias too, and a dark of another exposure can be scaled.
    assert {f.id for f in chosen.sets["bias"].files} == {50, 51, 52}
    assert "combined after bias" in record["dark"]["reason"]
    scaled = calibrate_light(_light(-10.0, 200, "Ha"), (64, 64), sets).as_dict()
    assert scaled["dark"]["set"].startswith("dark_120s_-10C")
    assert "dark scaled from 120 s to 200 s" in scaled["dark"]["reason"]
    unscalable = calibrate_light(_light(-19.8, 200, "Ha"), (64, 64), sets).as_dict()
    assert unscalable["dark"]["set"] is None
    assert any("cannot be scaled" in r for r in unscalable["dark"]["refused"])
    cold = calibrate_light(_light(-20.0, 300, "SII"), (64, 64), sets).as_dict()
    assert cold["dark"]["set"] is not None
    assert cold["flat"]["set"] is None and cold["flat"]["reason"].startswith("no match")
    warm = calibrate_light(_light(-5.0, 600, "Ha", gain=200), (64, 64), sets).as_dict()
    assert warm["dark"]["set"] is None and "gain" in " ".join(warm["dark"]["refused"])


def test_temperature_runs_never_span_more_than_two_degrees():
    files = [_file(i, "dark", t, 60) for i, t in enumerate([-10.9, -10.0, -9.1, -8.5, -7.0, -6.6])]
    sets = group_calibration(files)
    for s in sets:
        temps = [f.info.temperature_c for f in s.files]
        assert max(temps) - min(temps) <= 2.0


def test_siril_script_layout():
    from datas_pipeline.archive.package import CalibrationFolder, LightFolder, siril_script

    calibration = {"b": CalibrationFolder("bias", "biases/b"), "d": CalibrationFolder("dark", "darks/d", bias="b"),
                   "f": CalibrationFolder("flat", "flats/f", bias="b"),
                   "m": CalibrationFolder("dark", "darks/m", master_file="master_dark.fits")}
    script = siril_script([LightFolder("lights/Ha", "Ha", "d", "f", "b", ["a.fits"]),
                           LightFolder("lights/OIII", "OIII", "m", None, None, ["b.fits"]),
                           LightFolder("lights/SII", "SII", "d", "f", "b", ["c.fits"], scale_dark=True)], calibration)
    lines = script.splitlines()
    assert lines[0] == "requires 1.0.0"
    order = [line for line in lines if line.startswith("stack ")]
    assert [line.split()[1] for line in order][:3] == ["bias_b", "pp_dark_d", "pp_flat_f"]  # bias first
    assert "preprocess light_ha -bias=bias_b_stacked -dark=dark_d_stacked -flat=flat_f_stacked" in lines
    assert "preprocess light_oiii -dark=../darks/m/master_dark.fits" in lines
    assert "preprocess light_sii -bias=bias_b_stacked -flat=flat_f_stacked" in lines  # no dark it cannot scale
    assert not any(line.startswith("preprocess") and "-opt" in line for line in lines)
