"""Synthetic light frames of real Tycho-2 skies at a known WCS, with an injected target star.

Truth for the pipeline tests: the WCS each frame was rendered with, the target's magnitude
in the catalogue's band (VT, the band of the comparison stars), and the sky's transparency.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.synthetic.fields import STAR_DTYPE, catalog_stars, expose, make_wcs, sky_image

SHAPE = (512, 512)
SCALE_ARCSEC = 10.0
FLUX_AT_MAG0 = 3e8  # e- in the exposure for a VT = 0 star
# The Pleiades field, and a target 0.28 deg from its centre clear of any Tycho-2 star.
FIELD = (56.75, 24.12)
TARGET = (56.9691, 24.32)
TARGET_MAG = 10.5
# The Pleiades culminate near midnight UTC in early December from La Palma (the header's site).
NIGHT = datetime(2025, 12, 1, 0, 0, tzinfo=UTC)


@dataclass
class SkyFrame:
    data: bytes
    wcs: WCS
    observed_at: datetime


def render(truth: WCS, rng: np.random.Generator, *, target_mag: float | None = TARGET_MAG, fwhm: float = 2.5,
           transparency: float = 1.0, sky: float = 100.0) -> np.ndarray:
    """The frame in ADU (gain 1 e-/ADU), unclipped."""
    centre = truth.wcs.crval
    stars = catalog_stars(truth, SHAPE, tycho2_cone(centre[0], centre[1], 1.5), flux_at_mag0=FLUX_AT_MAG0)
    if target_mag is not None:
        x, y = truth.all_world2pix([TARGET[0]], [TARGET[1]], 0)
        extra = np.array([(x[0], y[0], FLUX_AT_MAG0 * 10 ** (-0.4 * target_mag))], dtype=STAR_DTYPE)
        stars = np.concatenate([stars, extra])
    return expose(sky_image(SHAPE, stars, sky=sky, fwhm=fwhm, transparency=transparency), rng, sky=0.0,
                  read_noise=5.0) + 500.0


def header_for(observed_at: datetime, **cards) -> fits.Header:
    """What a capture program writes: time, exposure, type, filter, object, mount pointing, optics."""
    header = fits.Header()
    values = {"DATE-OBS": observed_at.strftime("%Y-%m-%dT%H:%M:%S"), "EXPTIME": 60.0, "IMAGETYP": "Light Frame",
              "FILTER": "V", "OBJECT": "V1 Tau", "RA": FIELD[0] + 0.15, "DEC": FIELD[1] - 0.1,
              "SITELAT": 28.76, "SITELONG": -17.88, "SITEELEV": 2300.0, "INSTRUME": "Synthetic CCD",
              "XBINNING": 1, "YBINNING": 1, "GAIN": 1.0, "EGAIN": 1.0, "RDNOISE": 5.0, "OFFSET": 500,
              "CCD-TEMP": -10.0, "XPIXSZ": 9.0, "FOCALLEN": 206.264806 * 9.0 / SCALE_ARCSEC, "SATURATE": 60000.0}
    values.update(cards)
    for key, value in values.items():
        if value is not None:
            header[key] = value
    return header


def sky_frame(index: int, *, shift_px: tuple[float, float] = (0.0, 0.0), rotation_deg: float = 20.0,
              seed: int = 0, when: datetime | None = None, **render_options) -> SkyFrame:
    """Frame ``index`` of a sequence on the field: the pointing drifts by ``shift_px``."""
    truth = make_wcs(*FIELD, SCALE_ARCSEC, SHAPE, rotation_deg=rotation_deg)
    truth.wcs.crpix = truth.wcs.crpix + np.asarray(shift_px)
    observed_at = (when or NIGHT) + timedelta(minutes=2 * index)
    data = render(truth, np.random.default_rng(seed * 1000 + index), **render_options)
    out = io.BytesIO()
    fits.PrimaryHDU(np.clip(np.rint(data), 0, 65535).astype(np.uint16), header=header_for(observed_at)).writeto(out)
    return SkyFrame(out.getvalue(), truth, observed_at)


def pixel_error(wcs: WCS, truth: WCS, shape=SHAPE) -> float:
    """Largest distance (px) between where ``wcs`` and ``truth`` put the same sky points."""
    gy, gx = np.mgrid[0:shape[0]:32, 0:shape[1]:32]
    ra, dec = wcs.all_pix2world(gx.ravel(), gy.ravel(), 0)
    tx, ty = truth.all_world2pix(ra, dec, 0)
    return float(np.hypot(tx - gx.ravel(), ty - gy.ravel()).max())
