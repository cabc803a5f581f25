"""Which frames are one pointing: DBSCAN on the sphere (scikit-learn, haversine metric).

Dithered frames of one panel lie a few per cent of the field apart; the panels of a mosaic
lie most of a field apart (they overlap by 10-30 %). The neighbourhood is therefore a
fraction of the field of view (:data:`EPS_FRACTION`), so dithers chain into one cluster
and panels never do. Frames taken at clearly different camera rotations are clustered
separately (they cannot be stacked as one panel without losing the corners); a meridian
flip (180 degrees) is the same framing and stays together.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import DBSCAN

# Neighbourhood radius as a fraction of the field's shorter side.
EPS_FRACTION = 0.25
# Rotations (modulo 180 degrees) closer than this are one framing, degrees.
ROTATION_TOLERANCE_DEG = 10.0


@dataclass(frozen=True)
class Cluster:
    """A group of frames of one pointing: members (indices into the input), centre (degrees),
    field of view (degrees) and rotation (degrees east of north, modulo 180; None if unknown)."""

    label: int
    members: tuple[int, ...]
    ra_deg: float
    dec_deg: float
    fov_deg: float
    rotation_deg: float | None


def _rotation_groups(rotation_deg: np.ndarray, tolerance_deg: float) -> np.ndarray:
    """Group label per frame from its rotation modulo 180 (-1 where unknown)."""
    groups = np.full(len(rotation_deg), -1, dtype=int)
    known = np.isfinite(rotation_deg)
    if not known.any():
        return groups
    doubled = np.radians(2.0 * (rotation_deg[known] % 180.0))
    circle = np.column_stack([np.cos(doubled), np.sin(doubled)])
    chord = 2.0 * np.sin(np.radians(2.0 * tolerance_deg) / 2.0)
    groups[known] = DBSCAN(eps=chord, min_samples=1).fit_predict(circle)
    return groups


def _centre(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    r, d = np.radians(ra), np.radians(dec)
    v = np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).mean(axis=0)
    v /= np.linalg.norm(v)
    ra = float(np.degrees(np.arctan2(v[1], v[0])) % 360.0)
    return (0.0 if ra >= 360.0 - 1e-9 else ra), float(np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0))))


def _haversine(ra1, dec1, ra2, dec2):
    """Great-circle distance, radians (all angles in radians)."""
    a = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return 2.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _dbscan(index: np.ndarray, ra, dec, fov, rotation, eps_fraction: float) -> list:
    """DBSCAN (haversine) of the frames ``index``: [(members, field, rotation), ...]."""
    eps = np.radians(eps_fraction * float(np.median(fov[index])))
    points = np.column_stack([np.radians(dec[index]), np.radians(ra[index])])
    labels = DBSCAN(eps=eps, min_samples=1, metric="haversine", algorithm="ball_tree").fit_predict(points)
    out = []
    for label in np.unique(labels):
        members = index[labels == label]
        turned = rotation[members]
        turned = turned[np.isfinite(turned)]
        angle = None
        if len(turned):
            doubled = np.radians(2.0 * (turned % 180.0))
            angle = float(np.degrees(np.arctan2(np.sin(doubled).mean(), np.cos(doubled).mean())) / 2.0) % 180.0
        out.append((members, float(np.median(fov[members])), angle))
    return out


def cluster_pointings(
    ra_deg, dec_deg, fov_deg, rotation_deg=None, *, eps_fraction: float = EPS_FRACTION,
    rotation_tolerance_deg: float = ROTATION_TOLERANCE_DEG,
) -> list[Cluster]:
    """Cluster frame centres into pointings.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Frame centres from their WCS, degrees (ICRS).
    fov_deg : array_like
        Each frame's shorter field side, degrees; the neighbourhood is ``eps_fraction`` of the
        median within a rotation group.
    rotation_deg : array_like, optional
        Position angle of each frame's +y axis, degrees (NaN where unknown).

    Returns
    -------
    list of Cluster
        Sorted by right ascension then declination of the centre; labels 0, 1, ...
    """
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    fov = np.asarray(fov_deg, dtype=float)
    if not (len(ra) == len(dec) == len(fov)):
        raise ValueError("ra_deg, dec_deg and fov_deg must have the same length")
    if len(ra) == 0:
        return []
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec)) and np.all(fov > 0)):
        raise ValueError("every frame needs a finite centre and a positive field of view")
    rotation = np.full(len(ra), np.nan) if rotation_deg is None else np.asarray(rotation_deg, dtype=float)
    groups = _rotation_groups(rotation, rotation_tolerance_deg)
    found: list[tuple[np.ndarray, float, float | None]] = []
    for group in np.unique(groups[groups >= 0]):
        found += _dbscan(np.flatnonzero(groups == group), ra, dec, fov, rotation, eps_fraction)
    unknown = np.flatnonzero(groups < 0)
    if len(unknown) and found:
        # A frame without a rotation (its position from the mount's pointing) joins the
        # nearest pointing within twice the neighbourhood, if any.
        centres = np.array([_centre(ra[m], dec[m]) for m, _, _ in found])
        reach = np.radians(2.0 * eps_fraction * np.array([w for _, w, _ in found]))
        joined = []
        for i in unknown:
            gap = _haversine(np.radians(ra[i]), np.radians(dec[i]), np.radians(centres[:, 0]),
                             np.radians(centres[:, 1]))
            best = int(np.argmin(gap))
            if gap[best] <= reach[best]:
                members, width, angle = found[best]
                found[best] = (np.append(members, i), width, angle)
                joined.append(i)
        unknown = np.setdiff1d(unknown, joined)
    if len(unknown):
        found += _dbscan(unknown, ra, dec, fov, rotation, eps_fraction)
    clusters = []
    for members, width, angle in found:
        ra_c, dec_c = _centre(ra[members], dec[members])
        clusters.append((ra_c, dec_c, members, width, angle))
    clusters.sort(key=lambda c: (round(c[0], 6), round(c[1], 6)))
    return [Cluster(i, tuple(int(m) for m in members), ra_c, dec_c, width, angle)
            for i, (ra_c, dec_c, members, width, angle) in enumerate(clusters)]
