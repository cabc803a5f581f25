"""A header WCS described without SkyCoord: centre, scale, rotation, parity, corners.

:func:`datas_pipeline.astrometry.solve.describe_wcs` goes through SkyCoord, a few milliseconds per frame;
a header-only catalogue of ten thousand frames cannot afford it. Same definitions here
with numpy: the centre pixel and its +x and +y neighbours mapped to the sky, the position
angle of +y east of north, the parity from the turn between +y and +x.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning

# Keywords of a two-axis celestial WCS (SIP included); anything else is left to astropy.
_WCS_KEY = re.compile(r"^(WCSAXES|CTYPE[12]|CUNIT[12]|CRVAL[12]|CRPIX[12]|CDELT[12]|CROTA[12]|CD[12]_[12]|"
                      r"PC[12]_[12]|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|[AB]P?_\d+_\d+|[AB]P?_ORDER|"
                      r"PV[12]_\d+)$")


def wcs_keywords(cards) -> dict:
    """The WCS keywords among ``(keyword, value, comment)`` cards (first of each)."""
    out: dict = {}
    for keyword, value, _ in cards:
        if keyword not in out and _WCS_KEY.match(keyword):
            out[keyword] = value
    return out


def cards_wcs(cards) -> tuple[WCS, dict] | None:
    """The celestial WCS built from a header's WCS keywords alone, and those keywords.

    Parsing a dozen keywords instead of a capture program's hundred makes this fast
    enough for a header-only catalogue. None when there is no celestial WCS.
    """
    keywords = wcs_keywords(cards)
    if not str(keywords.get("CTYPE1", "")).startswith("RA") or "CTYPE2" not in keywords:
        return None
    simple = _linear_wcs(keywords)
    if simple is not None:
        return simple, keywords
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(fits.Header(keywords), naxis=2)
    except Exception:  # wcslib raises several types for malformed keywords
        return None
    if not wcs.has_celestial:
        return None
    return wcs, keywords


def _linear_wcs(k: dict) -> WCS | None:
    """A WCS set field by field from the keywords of a plain projection (CD, PC+CDELT or
    CDELT+CROTA2; no SIP, no PV): 40x faster than parsing a header. None otherwise."""
    if any(key.startswith(("A_", "B_", "AP_", "BP_", "PV")) for key in k):
        return None
    try:
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = [str(k["CTYPE1"]), str(k["CTYPE2"])]
        wcs.wcs.crval = [float(k["CRVAL1"]), float(k["CRVAL2"])]
        wcs.wcs.crpix = [float(k["CRPIX1"]), float(k["CRPIX2"])]
        if "CD1_1" in k or "CD2_2" in k:
            wcs.wcs.cd = [[float(k.get("CD1_1", 0.0)), float(k.get("CD1_2", 0.0))],
                          [float(k.get("CD2_1", 0.0)), float(k.get("CD2_2", 0.0))]]
        else:
            wcs.wcs.cdelt = [float(k["CDELT1"]), float(k["CDELT2"])]
            if any(key.startswith("PC") for key in k):
                wcs.wcs.pc = [[float(k.get("PC1_1", 1.0)), float(k.get("PC1_2", 0.0))],
                              [float(k.get("PC2_1", 0.0)), float(k.get("PC2_2", 1.0))]]
            elif "CROTA2" in k:
                wcs.wcs.crota = [0.0, float(k["CROTA2"])]
        for key, attribute in (("LONPOLE", "lonpole"), ("LATPOLE", "latpole"), ("EQUINOX", "equinox")):
            if key in k:
                setattr(wcs.wcs, attribute, float(k[key]))
        if "RADESYS" in k:
            wcs.wcs.radesys = str(k["RADESYS"])
        wcs.wcs.set()
    except (KeyError, TypeError, ValueError, Exception):  # wcslib's own errors subclass Exception only
        return None
    return wcs


def _position_angle(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Position angle of point 2 seen from point 1, degrees east of north (radians in)."""
    dra = ra2 - ra1
    return math.degrees(math.atan2(math.sin(dra) * math.cos(dec2),
                                   math.cos(dec1) * math.sin(dec2) - math.sin(dec1) * math.cos(dec2) * math.cos(dra)))


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    a = math.sin((dec2 - dec1) / 2) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    return 2.0 * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def describe_wcs_fast(wcs: WCS, shape: tuple[int, int]) -> dict:
    """As :func:`datas_pipeline.astrometry.solve.describe_wcs`: centre (degrees), pixel scale (arcsec/px),
    rotation (degrees, position angle of +y) and ``flipped``."""
    ny, nx = shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    ra, dec = wcs.all_pix2world(np.array([cx, cx, cx + 1.0]), np.array([cy, cy + 1.0, cy]), 0)
    r, d = np.radians(ra), np.radians(dec)
    rotation = _position_angle(r[0], d[0], r[1], d[1]) % 360.0
    up = _separation(r[0], d[0], r[1], d[1])
    right = _separation(r[0], d[0], r[2], d[2])
    turn = (_position_angle(r[0], d[0], r[2], d[2]) - rotation) % 360.0
    return {"ra_deg": float(ra[0]) % 360.0, "dec_deg": float(dec[0]),
            "pixel_scale_arcsec": math.degrees(math.sqrt(up * right)) * 3600.0, "rotation_deg": rotation,
            "flipped": bool(abs(turn - 90.0) < 45.0)}
