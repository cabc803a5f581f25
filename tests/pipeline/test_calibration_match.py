"""Matching rules: the right master for a light, and a reason for every refusal."""
from pathlib import Path

import numpy as np
from astropy.io import fits
from datas_pipeline.calibration.masters import Master, write_master
from datas_pipeline.calibration.match import MatchRules, choose_master, choose_masters, load_master_library
from datas_pipeline.io.headers import normalise_header

SHAPE = (20, 30)


def light(**changes):
    cards = {"IMAGETYP": "LIGHT", "INSTRUME": "ASI1600", "XBINNING": 1, "YBINNING": 1, "GAIN": 139,
             "OFFSET": 21, "CCD-TEMP": -15.0, "EXPTIME": 120.0, "FILTER": "Ha", "DATE-OBS": "2024-05-10T23:00:00"}
    cards.update(changes)
    return normalise_header(fits.Header({k: v for k, v in cards.items() if v is not None}))


def master(kind, name, shape=SHAPE, biassub=True, **changes):
    cards = {"IMAGETYP": f"MASTER {kind.upper()}", "INSTRUME": "ASI1600", "XBINNING": 1, "YBINNING": 1,
             "GAIN": 139, "OFFSET": 21, "CCD-TEMP": -15.0, "EXPTIME": 120.0 if kind == "dark" else 0.0,
             "FILTER": "Ha", "DATE-OBS": "2024-05-10T12:00:00", "BIASSUB": biassub}
    cards.update(changes)
    m = Master(kind, np.zeros(shape, np.float32), fits.Header({k: v for k, v in cards.items() if v is not None}))
    m.path = Path(f"{name}.fits")
    return m


def test_the_exact_dark_beats_a_scaled_one_and_refusals_say_why():
    candidates = [
        master("dark", "scaled", EXPTIME=300.0),
        master("dark", "exact"),
        master("dark", "warm", **{"CCD-TEMP": -5.0}),
        master("dark", "binned", shape=(10, 15), XBINNING=2, YBINNING=2),
        master("dark", "otherdark", biassub=False, EXPTIME=60.0),
        master("dark", "othercam", INSTRUME="QHY268M"),
        master("dark", "gain0", GAIN=0),
    ]
    choice = choose_master(light(), SHAPE, candidates, "dark")
    assert choice.master.path.name == "exact.fits"
    reasons = {r.master.path.stem: " ".join(r.reasons) for r in choice.refused}
    assert set(reasons) == {"warm", "binned", "otherdark", "othercam", "gain0"}
    assert "-5.0 C" in reasons["warm"] and "tolerance 2 C" in reasons["warm"]
    assert "binning" in reasons["binned"] and "shape" in reasons["binned"]
    assert "cannot be scaled" in reasons["otherdark"]
    assert "camera QHY268M differs" in reasons["othercam"] and "gain 0 differs" in reasons["gain0"]
    scaled = choose_master(light(), SHAPE, [candidates[0]], "dark")
    assert scaled.master.path.stem == "scaled" and any("scaled from 300 s to 120 s" in n for n in scaled.notes)
    strict = choose_master(light(), SHAPE, [candidates[0]], "dark", MatchRules(allow_dark_scaling=False))
    assert strict.master is None and "scaling disabled" in strict.refused[0].reasons[0]


def test_flats_need_the_filter_and_the_nearest_date_wins():
    candidates = [master("flat", "old"), master("flat", "new", **{"DATE-OBS": "2024-05-11T04:00:00"}),
                  master("flat", "oiii", FILTER="OIII"), master("flat", "nofilter", FILTER=None)]
    choice = choose_master(light(), SHAPE, candidates, "flat")
    assert choice.master.path.stem == "new"
    reasons = {r.master.path.stem: r.reasons[0] for r in choice.refused}
    assert reasons["oiii"] == "filter OIII differs from the light's Ha"
    assert "names no filter" in reasons["nofilter"]
    aged = choose_master(light(), SHAPE, candidates[:2], "flat", MatchRules(max_age_days={"flat": 0.2}))
    assert aged.master is None and all("limit 0.2" in r.reasons[0] for r in aged.refused)


def test_a_dark_with_the_bias_makes_the_bias_unnecessary_and_unknowns_are_noted():
    library = [master("bias", "bias"), master("dark", "dark", biassub=False), master("flat", "flat")]
    chosen = choose_masters(light(), SHAPE, library)
    assert chosen["bias"].master is None and chosen["dark"].master.path.stem == "dark"
    assert "includes the bias" in chosen["bias"].notes[0]
    unknown = choose_masters(light(**{"CCD-TEMP": None, "INSTRUME": None}), SHAPE, library)
    assert unknown["dark"].master is not None
    assert "sensor temperature unknown, not checked" in unknown["dark"].notes
    assert "camera unknown on the light, not checked" in unknown["dark"].notes
    nothing = choose_masters(light(), (5, 5), library)
    assert all(c.master is None for c in nothing.values() if c.kind != "bias")
    assert nothing["flat"].as_dict()["refused"][0].startswith("flat.fits: shape")


def test_library_reads_masters_from_a_folder(tmp_path):
    write_master(master("dark", "d"), tmp_path / "d.fits")
    write_master(master("flat", "f"), tmp_path / "f.fits")
    (tmp_path / "notes.txt").write_text("not a master")
    fits.PrimaryHDU(np.zeros((2, 2)), fits.Header({"IMAGETYP": "LIGHT"})).writeto(tmp_path / "light.fits")
    kinds = sorted(m.kind for m in load_master_library(tmp_path))
    assert kinds == ["dark", "flat"]
