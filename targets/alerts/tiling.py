"""Cover an error region larger than a field of view with tiles ranked by enclosed probability.

Pure numpy and astropy-healpix (no Django). A localisation becomes probabilities on points of
the sky: a circle or ellipse is a 2-D Gaussian whose ``containment`` radius is the stated error
(GCN's convention: ``ra_dec_error`` holds ``containment_probability``, 0.68 for Fermi GBM),
sampled on a fine grid; a HEALPix map (LVK, IceCube) gives its pixel centres as they are. The sky is then cut into cells no larger than
the field of view (rows of constant declination, each cut into equal RA steps, anchored on
the alert's position), pixel probabilities are summed per cell, and the most probable cells
are taken until ``coverage`` of the probability is enclosed.

Angles in degrees; position angles east of north.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix

# The Gaussian is evaluated out to this many sigma (the mass beyond is < 4e-6).
SIGMA_LIMIT = 5.0
# Pixels are assigned to cells by their centres: aim this much above the wanted coverage so that
# the true enclosed probability (measured against the continuous region) still reaches it.
PIXEL_MARGIN = 0.005


class TilingError(ValueError):
    """A localisation or field of view the tiling cannot use."""


@dataclass(frozen=True)
class Tile:
    """One pointing: its centre and the probability its cell encloses."""

    ra_deg: float
    dec_deg: float
    probability: float


@dataclass(frozen=True)
class Tiling:
    """Tiles in decreasing probability; ``coverage`` is the probability they enclose together."""

    tiles: list[Tile]
    coverage: float
    fov_deg: float
    complete: bool


def sigma_for(radius_deg: float, containment: float) -> float:
    """Gaussian sigma whose circle of ``radius_deg`` holds ``containment`` of the probability."""
    if not 0 < containment < 1:
        raise TilingError(f"containment {containment} must be in (0, 1)")
    return radius_deg / math.sqrt(-2.0 * math.log(1.0 - containment))


def gaussian_pixels(ra_deg: float, dec_deg: float, radius_deg: float, containment: float, resolution_deg: float,
                    ellipse: tuple[float, float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points (ra, dec) and normalised probabilities of a circular or elliptical Gaussian.

    The points lie on a square grid of ``resolution_deg`` in azimuthal-equidistant offsets from
    the centre (exact distance and bearing), each weighted by the area it stands for.
    ``ellipse`` is ``(a, b, position angle)`` in degrees at ``containment``; otherwise the circle
    of ``radius_deg`` is.
    """
    a, b, pa = ellipse if ellipse is not None else (radius_deg, radius_deg, 0.0)
    if not (a > 0 and b > 0):
        raise TilingError("the error region needs a positive size")
    sigma_a, sigma_b = sigma_for(a, containment), sigma_for(b, containment)
    reach = min(179.0, SIGMA_LIMIT * max(sigma_a, sigma_b))
    steps = int(math.ceil(reach / resolution_deg))
    if steps > 2000:
        raise TilingError(f"the region ({reach:.1f} deg) is too large for tiles of {resolution_deg * 8:.2f} deg")
    axis = np.arange(-steps, steps + 1) * (reach / steps)
    east, north = (grid.ravel() for grid in np.meshgrid(axis, axis))
    rho = np.hypot(east, north)
    keep = rho <= reach
    east, north, rho = east[keep], north[keep], np.radians(rho[keep])
    theta = math.radians(pa)  # major axis from north through east
    along = north * math.cos(theta) + east * math.sin(theta)
    across = -north * math.sin(theta) + east * math.cos(theta)
    area = np.where(rho > 0, np.sin(rho) / np.where(rho > 0, rho, 1.0), 1.0)
    density = np.exp(-0.5 * ((along / sigma_a) ** 2 + (across / sigma_b) ** 2)) * area
    bearing, d0 = np.arctan2(east, north), math.radians(dec_deg)
    lat = np.arcsin(np.clip(np.sin(d0) * np.cos(rho) + np.cos(d0) * np.sin(rho) * np.cos(bearing), -1, 1))
    lon = math.radians(ra_deg) + np.arctan2(np.sin(bearing) * np.sin(rho) * np.cos(d0),
                                            np.cos(rho) - np.sin(d0) * np.sin(lat))
    return np.degrees(lon) % 360.0, np.degrees(lat), density / density.sum()


def skymap_pixels(probability: np.ndarray, nside: int, nested: bool, keep: float = 0.999
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel centres and probabilities of a HEALPix map, keeping the most probable ``keep`` of it."""
    probability = np.asarray(probability, dtype=float)
    order = np.argsort(probability)[::-1]
    cumulative = np.cumsum(probability[order]) / probability.sum()
    chosen = order[: int(np.searchsorted(cumulative, keep)) + 1]
    healpix = HEALPix(nside=nside, order="nested" if nested else "ring")
    lon, lat = healpix.healpix_to_lonlat(chosen)
    return lon.to_value(u.deg), lat.to_value(u.deg), probability[chosen] / probability.sum()


def cell_of(ra_deg: np.ndarray, dec_deg: np.ndarray, ra0: float, dec0: float, fov_deg: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cell (row, column) holding each position, and each row's column count.

    Rows are ``fov_deg`` tall with one centred on ``dec0``; a row is cut into equal RA steps no
    wider than ``fov_deg`` on its edge nearest the equator, with one column centred on ``ra0``.
    """
    row = np.floor((np.asarray(dec_deg) - dec0) / fov_deg + 0.5).astype(int)
    low = dec0 + (row - 0.5) * fov_deg
    high = low + fov_deg
    nearest_equator = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(np.abs(low), np.abs(high)))
    columns = np.maximum(1, np.ceil(360.0 * np.cos(np.radians(np.clip(nearest_equator, 0, 90))) / fov_deg)).astype(int)
    step = 360.0 / columns
    col = np.floor(((np.asarray(ra_deg) - ra0) % 360.0) / step + 0.5).astype(int) % columns
    return row, col, columns


def tile_region(ra_deg: np.ndarray, dec_deg: np.ndarray, probability: np.ndarray, centre: tuple[float, float],
                fov_deg: float, coverage: float = 0.9, max_tiles: int = 200) -> Tiling:
    """Rank the cells holding the pixels by enclosed probability and keep enough for ``coverage``.

    Parameters
    ----------
    ra_deg, dec_deg, probability : numpy.ndarray
        Pixel centres (degrees) and their probabilities (summing to at most 1).
    centre : (float, float)
        The alert's position; the grid is anchored there so one tile is centred on it.
    fov_deg : float
        Side of the field of view, degrees; cells are no larger.
    coverage : float
        Enclosed probability wanted (0..1).
    max_tiles : int
        Never more tiles than this (``complete`` is False when the cap stops short).
    """
    if not fov_deg > 0:
        raise TilingError(f"field of view {fov_deg} must be positive")
    ra0, dec0 = centre
    row, col, columns = cell_of(ra_deg, dec_deg, ra0, dec0, fov_deg)
    keys = row.astype(np.int64) * 1_000_000 + col
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=probability)
    order = np.argsort(sums)[::-1]
    cumulative = np.cumsum(sums[order])
    wanted = int(np.searchsorted(cumulative, min(coverage + PIXEL_MARGIN, cumulative[-1]) - 1e-12)) + 1
    count = min(wanted, max_tiles, len(order))
    tiles = []
    for index in order[:count]:
        r, c = divmod(int(unique[index]), 1_000_000)  # floor division: right for negative rows too
        dec = dec0 + r * fov_deg
        n = int(columns[first[index]])
        tiles.append(Tile((ra0 + c * 360.0 / n) % 360.0, float(np.clip(dec, -90, 90)), float(sums[index])))
    enclosed = float(cumulative[count - 1]) if count else 0.0
    return Tiling(tiles, enclosed, fov_deg, enclosed >= coverage - 1e-9)


def tile_localisation(ra_deg: float, dec_deg: float, radius_deg: float, fov_deg: float, *,
                      containment: float = 0.9, ellipse: tuple[float, float, float] | None = None,
                      skymap: tuple[np.ndarray, int, bool] | None = None, coverage: float = 0.9,
                      max_tiles: int = 200) -> Tiling:
    """Tiles for an alert's error circle, ellipse or HEALPix map (``(probability, nside, nested)``)."""
    if skymap is not None:
        lon, lat, p = skymap_pixels(*skymap)
    else:
        lon, lat, p = gaussian_pixels(ra_deg, dec_deg, radius_deg, containment, fov_deg / 8.0, ellipse)
    return tile_region(lon, lat, p, (ra_deg, dec_deg), fov_deg, coverage, max_tiles)
