"""A local Tycho-2 star catalogue from astrometry.net index files, for simulators that need real stars.

Debian's ``astrometry-data-tycho2`` index files carry Tycho-2 positions (as unit vectors in a
k-d tree) and VT magnitudes. This module decodes them (with datas_pipeline.catalog.reference, the one decoder) into a SQLite table
``gaia_sources(ra, dec, phot_g_mean_mag)``: the layout alpaca-simulators' camera (cabaret)
reads offline, and what ``gsc`` answers for INDI's CCD simulator, which renders the stars a
``gsc -c RA DEC -r ARCMIN -m 0 MAGLIM -n N`` command prints.

    python -m datas_agent.tycho build tycho2.sqlite [--index FILE ...]
    DATAS_TYCHO_DB=tycho2.sqlite python -m datas_agent.tycho gsc -c 56.75 +24.12 -r 60 -m 0 12 -n 3000
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np
from datas_pipeline.catalog.reference import CatalogError, index_stars

from datas_agent.storage import fsync_directory

INDEX_DIR = Path("/usr/share/astrometry")
DEFAULT_INDEX = "index-tycho2-08.littleendian.fits"
DB_ENV = "DATAS_TYCHO_DB"


class CatalogueError(Exception):
    """An index file or catalogue database is missing or unreadable."""


def read_index_stars(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ra_deg, dec_deg, vt_mag) of every star in an astrometry.net index file (either byte order).

    Decoded by datas_pipeline.catalog.reference, the server's own reader of these files.
    """
    try:
        return index_stars(path)
    except CatalogError as exc:
        raise CatalogueError(str(exc)) from None


def build_catalogue(db_path: str | Path, index_paths: list[Path] | None = None) -> int:
    """Write the SQLite catalogue (atomically); return the number of stars."""
    index_paths = index_paths or [INDEX_DIR / DEFAULT_INDEX]
    db_path = Path(db_path)
    tmp = db_path.with_suffix(db_path.suffix + ".part")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.execute("CREATE TABLE gaia_sources (ra REAL NOT NULL, dec REAL NOT NULL, phot_g_mean_mag REAL)")
    total = 0
    for path in index_paths:
        ra, dec, mag = read_index_stars(path)
        db.executemany("INSERT INTO gaia_sources VALUES (?, ?, ?)",
                       zip(ra.tolist(), dec.tolist(), mag.astype(float).tolist(), strict=True))
        total += len(ra)
    db.execute("CREATE INDEX gaia_sources_dec ON gaia_sources (dec, ra)")
    db.commit()
    db.close()
    os.replace(tmp, db_path)
    fsync_directory(db_path.parent)
    return total


def cone(db_path: str | Path, ra_deg: float, dec_deg: float, radius_deg: float, mag_limit: float = 99.0,
         limit: int = 3000) -> np.ndarray:
    """Stars within ``radius_deg`` of (ra, dec), brightest first: a record array (ra, dec, mag, dist_deg)."""
    if not Path(db_path).is_file():
        raise CatalogueError(f"{db_path}: no catalogue (build it with `python -m datas_agent.tycho build`)")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        dec_lo, dec_hi = dec_deg - radius_deg, dec_deg + radius_deg
        rows = np.array(db.execute(
            "SELECT ra, dec, phot_g_mean_mag FROM gaia_sources WHERE dec BETWEEN ? AND ? AND phot_g_mean_mag <= ?",
            (dec_lo, dec_hi, mag_limit)).fetchall(), dtype=float).reshape(-1, 3)
    finally:
        db.close()
    ra0, dec0, ra, dec = (np.radians(v) for v in (ra_deg, dec_deg, rows[:, 0], rows[:, 1]))
    cos_d = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    dist = np.degrees(np.arccos(np.clip(cos_d, -1.0, 1.0)))
    keep = dist <= radius_deg
    order = np.argsort(rows[keep, 2])[:limit]
    out = np.rec.fromarrays([rows[keep, 0][order], rows[keep, 1][order], rows[keep, 2][order], dist[keep][order]],
                            names="ra,dec,mag,dist_deg")
    return out


def gsc_lines(stars: np.ndarray) -> list[str]:
    """Lines in the layout INDI's CCD simulator parses from ``gsc`` (12 fields per star)."""
    return [f"T{i:09d} {s.ra:.6f} {s.dec:+.6f} 0.1 {s.mag:.2f} 0.1 1 0 TYC2 0 {s.dist_deg * 60.0:.2f} 0"
            for i, s in enumerate(stars)]


def gsc_main(argv: list[str]) -> int:
    """``gsc -c RA DEC -r ARCMIN -m MIN MAX -n N``: print the stars, as the Guide Star Catalog tool does."""
    parser = argparse.ArgumentParser(prog="gsc")
    parser.add_argument("-c", nargs=2, type=float, required=True, metavar=("RA", "DEC"))
    parser.add_argument("-r", type=float, default=10.0, metavar="ARCMIN")
    parser.add_argument("-m", nargs=2, type=float, default=(0.0, 99.0), metavar=("MIN", "MAX"))
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args(argv)
    db = os.environ.get(DB_ENV)
    if not db:
        print(f"gsc: set {DB_ENV} to the catalogue built by `python -m datas_agent.tycho build`", file=sys.stderr)
        return 2
    stars = cone(db, args.c[0] % 360.0, args.c[1], args.r / 60.0, mag_limit=args.m[1], limit=args.n)
    print("\n".join(gsc_lines(stars)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "gsc":
        return gsc_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m datas_agent.tycho")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="decode astrometry.net Tycho-2 index files into a SQLite catalogue")
    build.add_argument("output", type=Path)
    build.add_argument("--index", type=Path, action="append", help=f"index file (default {INDEX_DIR / DEFAULT_INDEX})")
    args = parser.parse_args(argv)
    try:
        count = build_catalogue(args.output, args.index)
    except CatalogueError as exc:
        print(f"tycho: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {count} stars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
