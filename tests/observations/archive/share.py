"""A seeded synthetic share with known truth: a 2x3 mosaic of the Pleiades and a second
target (the Crab), darks at two temperatures and two exposures, flats per filter, biases,
OBJECT names and file names that lie, every IMAGETYP spelling, and a few bad files.

The skies are real: Tycho-2 stars (and seeded faint field stars, fixed on the sky) rendered
through a known WCS, so a header WCS can be checked and Siril can register the frames.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from astropy.io import fits
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.synthetic.fields import catalog_stars, expose, make_wcs, sky_image

SHAPE = (256, 256)
SCALE_ARCSEC = 10.0
FOV_DEG = SHAPE[0] * SCALE_ARCSEC / 3600.0  # 0.71 deg
MOSAIC_CENTRE = (56.75, 24.12)
PANEL_STEP_DEG = 0.6  # 85 % of the field: panels overlap by 15 %
CRAB = (83.63, 22.01)
FILTERS = ("L", "R")
LIGHTS_PER_FILTER = 3
FLUX_AT_MAG0 = 2e8
NIGHT = datetime(2025, 12, 1, 21, 0, tzinfo=UTC)
CAMERA = "Synthetic CMOS"


@dataclass
class Truth:
    """What each file really is: kind, and for lights the pointing (panel), filter and
    the darks/flats it should get (by temperature and exposure / filter)."""

    kinds: dict[str, str] = field(default_factory=dict)
    panels: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    dark_of: dict[str, tuple[float, float]] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    exposures: dict[str, float] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    wcs_centres: dict[str, tuple[float, float]] = field(default_factory=dict)


def panel_centres() -> dict[str, tuple[float, float]]:
    """Six panels, 2 columns in RA x 3 rows in Dec, around the mosaic centre (degrees)."""
    ra0, dec0 = MOSAIC_CENTRE
    out = {}
    for row in range(3):
        for column in range(2):
            dec = dec0 + (row - 1) * PANEL_STEP_DEG
            ra = ra0 + (column - 0.5) * PANEL_STEP_DEG / np.cos(np.radians(dec))
            out[f"M45-P{row * 2 + column + 1}"] = (ra, dec)
    out["Crab"] = CRAB
    return out


def _sky(centre: tuple[float, float], seed: int) -> np.ndarray:
    """Tycho-2 plus faint field stars fixed on the sky (seeded), ra/dec/mag rows."""
    tycho = tycho2_cone(centre[0], centre[1], 2.0)
    rng = np.random.default_rng(seed)
    n = 3000
    faint = np.zeros(n, dtype=tycho.dtype)
    faint["ra"] = centre[0] + rng.uniform(-2.2, 2.2, n) / np.cos(np.radians(centre[1]))
    faint["dec"] = centre[1] + rng.uniform(-2.0, 2.0, n)
    faint["mag"] = rng.uniform(9.5, 12.5, n)
    return np.concatenate([tycho, faint])


def _write(path: Path, data: np.ndarray, header: fits.Header) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(data, 0, 65535).astype(np.uint16)
    name = path.name.lower()
    if name.endswith(".fz"):
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(pixels, header=header)]).writeto(path)
        return
    hdu = fits.PrimaryHDU(pixels, header=header)
    if name.endswith(".gz"):
        import io

        buffer = io.BytesIO()
        hdu.writeto(buffer)
        path.write_bytes(gzip.compress(buffer.getvalue()))
        return
    hdu.writeto(path)


def _header(kind_word: str | None, when: datetime, exposure: float, temperature: float, **cards) -> fits.Header:
    header = fits.Header()
    values = {"IMAGETYP": kind_word, "DATE-OBS": when.strftime("%Y-%m-%dT%H:%M:%S"), "EXPTIME": exposure,
              "INSTRUME": CAMERA, "XBINNING": 1, "YBINNING": 1, "GAIN": 100, "OFFSET": 50,
              "CCD-TEMP": temperature, "XPIXSZ": 3.76, "FOCALLEN": 206.264806 * 3.76 / SCALE_ARCSEC,
              "SITELAT": 28.76, "SITELONG": -17.88}
    values.update(cards)
    for key, value in values.items():
        if value is not None:
            header[key] = value
    return header


def _vignette() -> np.ndarray:
    yy, xx = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    r2 = ((xx - SHAPE[1] / 2) ** 2 + (yy - SHAPE[0] / 2) ** 2) / (SHAPE[0] / 2) ** 2
    return 1.0 - 0.15 * r2


LIGHT_WORDS = ("Light Frame", "LIGHT", "Object", "light")


def make_share(root: Path, seed: int = 7) -> Truth:
    """Write the share under ``root`` and return the truth."""
    rng = np.random.default_rng(seed)
    truth = Truth()
    vignette = _vignette()
    skies = {"M45": _sky(MOSAIC_CENTRE, 1), "Crab": _sky(CRAB, 2)}
    when = NIGHT
    n = 0
    for panel, (ra, dec) in panel_centres().items():
        is_crab = panel == "Crab"
        exposure, temperature = (120.0, -20.0) if is_crab else (300.0, -10.0)
        # Lies: the mosaic's frames say they are the Crab and the Crab's say M45 (in names too).
        lie = "M45 Panel 1" if is_crab else "NGC 1952"
        folder = root / when.strftime("%Y-%m-%d") / lie.replace(" ", "_") / "LIGHT"
        for f_index, filter_name in enumerate(FILTERS):
            for k in range(LIGHTS_PER_FILTER):
                dither = rng.uniform(-10, 10, 2) * SCALE_ARCSEC / 3600.0
                flip = is_crab and k == 2  # a meridian flip: same panel, rotated 180 degrees
                rotation = 180.0 + rng.uniform(-0.5, 0.5) if flip else rng.uniform(-0.5, 0.5)
                centre = (ra + dither[0] / np.cos(np.radians(dec)), dec + dither[1])
                wcs = make_wcs(centre[0], centre[1], SCALE_ARCSEC, SHAPE, rotation_deg=rotation)
                stars = catalog_stars(wcs, SHAPE, skies["Crab" if is_crab else "M45"], flux_at_mag0=FLUX_AT_MAG0)
                electrons = sky_image(SHAPE, stars, sky=300.0, fwhm=3.0) * vignette
                data = expose(electrons, rng, sky=0.0, read_noise=3.0) + 500.0 + 0.02 * exposure
                cards = {"FILTER": filter_name, "OBJECT": lie, "RA": ra, "DEC": dec, "TEMPERAT": None}
                # Most lights carry the WCS the capture program solved; some none; one a wrong one.
                if not (k == 1 and f_index == 0):
                    shown = wcs.deepcopy()
                    if panel == "M45-P3" and k == 2 and f_index == 1:
                        shown.wcs.crval = [centre[0] + 0.25, centre[1] - 0.2]  # a stale WCS: 0.3 deg off
                    cards.update(dict(shown.to_header()))
                word = LIGHT_WORDS[n % len(LIGHT_WORDS)]
                suffix = (".fits", ".FIT", ".fts")[n % 3]
                path = folder / f"{lie.replace(' ', '_')}_{filter_name}_{exposure:g}s_{n:04d}{suffix}"
                _write(path, data, _header(word, when, exposure, temperature + rng.uniform(-0.3, 0.3), **cards))
                truth.kinds[str(path)] = "light"
                truth.panels[str(path)] = panel
                truth.filters[str(path)] = filter_name
                truth.dark_of[str(path)] = (temperature, exposure)
                truth.wcs_centres[str(path)] = centre
                when += timedelta(seconds=exposure + 10)
                n += 1
    calibration = root / "calibration"
    dark_words = ("Dark Frame", "DARK", "dark")
    for temperature in (-10.0, -20.0):
        for exposure in (120.0, 300.0):
            for k in range(3):
                data = expose(np.zeros(SHAPE), rng, sky=0.0, read_noise=3.0) + 500.0 + 0.02 * exposure
                t = temperature + rng.uniform(-0.4, 0.4)
                # Darks no light uses come compressed: gzip (300 s at -20 C) and tile-compressed .fz.
                suffix = {(-20.0, 300.0): ".fits.gz", (-10.0, 120.0): ".fz"}.get((temperature, exposure), ".fits")
                path = calibration / "darks" / f"dark_{exposure:g}s_{temperature:g}C_{k}{suffix}"
                _write(path, data, _header(dark_words[k], NIGHT + timedelta(hours=8, minutes=k), exposure, t))
                truth.kinds[str(path)] = "dark"
                truth.temperatures[str(path)] = temperature
                truth.exposures[str(path)] = exposure
    flat_words = ("Flat Field", "FLAT", "flat")
    for filter_name in FILTERS:
        for k in range(3):
            data = expose(20000.0 * vignette, rng, sky=0.0, read_noise=3.0) + 500.0
            path = calibration / "flats" / filter_name / f"flat_{filter_name}_{k}.fit"
            _write(path, data, _header(flat_words[k], NIGHT - timedelta(hours=1), 2.0, -10.0, FILTER=filter_name))
            truth.kinds[str(path)] = "flat"
            truth.filters[str(path)] = filter_name
    for k in range(3):  # biases: one spelled 'ZERO', and some with no IMAGETYP in a 'Bias' folder
        data = expose(np.zeros(SHAPE), rng, sky=0.0, read_noise=3.0) + 500.0
        word = ("Bias Frame", "ZERO", None)[k]
        path = calibration / "Bias" / f"frame_{k}.fits"
        _write(path, data, _header(word, NIGHT - timedelta(hours=2), 0.0, -10.0))
        truth.kinds[str(path)] = "bias"
    bad = root / "junk"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "preview.fits").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    truth.bad[str(bad / "preview.fits")] = "PNG"
    good = next(p for p, k in truth.kinds.items() if k == "light")
    (bad / "cut.fits").write_bytes(Path(good).read_bytes()[:5000])
    truth.bad[str(bad / "cut.fits")] = "truncated"
    header = _header("LIGHT", NIGHT, 60.0, -10.0)
    del header["DATE-OBS"]
    _write(bad / "no_date.fits", np.zeros(SHAPE), header)
    truth.bad[str(bad / "no_date.fits")] = "time of observation"
    (bad / "notes.txt").write_text("not a frame")
    return truth
