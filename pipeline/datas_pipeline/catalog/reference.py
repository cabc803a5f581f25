"""Reference stars: Tycho-2 out of the installed astrometry.net index files, or a user table.

Debian's ``astrometry-data-tycho2`` ships index files whose star kd-tree holds every star as
three native-endian uint32 unit-vector components (``kdtree_data_stars``), scaled by the
tree's range (``kdtree_range_stars``: min[3], max[3], scale), with the VT magnitude in the
``MAG_VT`` column. Index 07 (the finest) carries 1.87 million stars to VT ~ 13, enough to
render and check fields of 1-10 degrees.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from datas_pipeline.errors import PipelineError

INDEX_DIR = Path(os.environ.get("DATAS_ASTROMETRY_INDEX_DIR", "/usr/share/astrometry"))
CATALOG_DTYPE = [("ra", "f8"), ("dec", "f8"), ("mag", "f4")]


class CatalogError(PipelineError):
    """A reference catalogue is missing or unreadable."""


def default_tycho2_index() -> Path:
    """The densest installed Tycho-2 index file."""
    for name in ("index-tycho2-07.littleendian.fits", "index-tycho2-07.bigendian.fits",
                 "index-tycho2-08.littleendian.fits", "index-tycho2-09.littleendian.fits"):
        if (INDEX_DIR / name).is_file():
            return INDEX_DIR / name
    raise CatalogError(f"no Tycho-2 index files in {INDEX_DIR} (apt-get install astrometry-data-tycho2)")


@functools.lru_cache(maxsize=2)
def _index_stars(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (n, 3) and VT magnitudes of every star in an index file."""
    try:
        with fits.open(path, memmap=True) as hdul:
            names = {hdu.header.get("TTYPE1"): i for i, hdu in enumerate(hdul)}
            endian = "<" if hdul[0].header.get("ENDIAN", "04:03:02:01") == "04:03:02:01" else ">"
            star_hdu, range_hdu = names["kdtree_data_stars"], names["kdtree_range_stars"]
            n = int(hdul[star_hdu].header["NAXIS2"])
            star_offset = hdul.fileinfo(star_hdu)["datLoc"]
            range_offset = hdul.fileinfo(range_hdu)["datLoc"]
            mags = np.asarray(hdul[names["MAG_VT"]].data["MAG_VT"], dtype=np.float32)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{path}: not a readable astrometry.net index ({exc})") from None
    bounds = np.fromfile(path, dtype=f"{endian}f8", count=7, offset=range_offset)
    raw = np.memmap(path, dtype=f"{endian}u4", mode="r", offset=star_offset, shape=(n, 3))
    xyz = bounds[0:3] + raw.astype(np.float64) / bounds[6]
    xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
    return xyz, mags


def radec_to_xyz(ra_deg: np.ndarray | float, dec_deg: np.ndarray | float) -> np.ndarray:
    """Unit vectors (..., 3) for RA/Dec in degrees."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def index_stars(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ra_deg, dec_deg, vt_mag) of every star in an astrometry.net index file, either byte order.

    The one decoder of these files (the site agent's simulator catalogue uses it too).
    """
    xyz, mags = _index_stars(Path(path))
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return ra, dec, mags


def tycho2_cone(
    ra_deg: float, dec_deg: float, radius_deg: float, mag_limit: float | None = None,
    index_path: Path | None = None,
) -> np.ndarray:
    """Tycho-2 stars within ``radius_deg`` of (RA, Dec), brightest first.

    Returns a structured array with ``ra``, ``dec`` (degrees, J2000) and ``mag`` (VT).
    """
    xyz, mags = _index_stars(index_path or default_tycho2_index())
    centre = radec_to_xyz(ra_deg, dec_deg)
    inside = xyz @ centre >= np.cos(np.radians(radius_deg))
    if mag_limit is not None:
        inside &= mags <= mag_limit
    sel = xyz[inside]
    out = np.zeros(len(sel), dtype=CATALOG_DTYPE)
    out["ra"] = np.degrees(np.arctan2(sel[:, 1], sel[:, 0])) % 360.0
    out["dec"] = np.degrees(np.arcsin(np.clip(sel[:, 2], -1.0, 1.0)))
    out["mag"] = mags[inside]
    return out[np.argsort(out["mag"], kind="stable")]


def read_reference_catalog(path: str | Path) -> np.ndarray:
    """A user's reference table (CSV, ECSV, FITS or VOTable) with RA, Dec and a magnitude.

    Column names are matched case-insensitively: ``ra``/``ra_deg``/``raj2000``,
    ``dec``/``dec_deg``/``dej2000``, and ``mag``/``phot_g_mean_mag``/``vmag``/``v``/``gmag``.
    Returns the same structured array as :func:`tycho2_cone`.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    try:
        fmt = "ascii.csv" if path.suffix.lower() in (".csv", ".txt") else None
        table = Table.read(path, format=fmt) if fmt else Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable tables
        raise CatalogError(f"{path}: not a readable table ({exc})") from None
    columns = {name.lower(): name for name in table.colnames}

    def pick(options: tuple[str, ...], what: str) -> np.ndarray:
        for option in options:
            if option in columns:
                return np.asarray(table[columns[option]], dtype=np.float64)
        raise CatalogError(f"{path}: no {what} column (looked for {', '.join(options)})")

    out = np.zeros(len(table), dtype=CATALOG_DTYPE)
    out["ra"] = pick(("ra", "ra_deg", "raj2000", "ra_icrs"), "RA")
    out["dec"] = pick(("dec", "dec_deg", "dej2000", "decj2000", "de_icrs"), "Dec")
    out["mag"] = pick(("mag", "phot_g_mean_mag", "vmag", "v", "gmag", "vtmag", "magnitude"), "magnitude")
    good = np.isfinite(out["ra"]) & np.isfinite(out["dec"]) & (np.abs(out["dec"]) <= 90)
    return out[good]
