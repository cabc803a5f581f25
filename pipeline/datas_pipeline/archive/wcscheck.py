"""Is a header's WCS right? Checked against Tycho-2 stars when enough lie in the field.

Capture programs write a WCS from the mount's idea of where it points, or from a solve of
another frame; it is trusted only when the catalogue stars it places in the frame have a
detected star under them. With too few catalogue stars to judge, the WCS is kept and the
check says it could not be made.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from datas_pipeline.catalog.reference import CatalogError, radec_to_xyz, tycho2_cone

# Brightest catalogue stars checked, the fewest that make a verdict, the share that must match.
CHECK_STARS = 25
MIN_CHECK_STARS = 5
MIN_MATCHED_FRACTION = 0.5


@dataclass(frozen=True)
class WcsCheck:
    """Verdict: ``ok`` (False only when the catalogue contradicts the WCS), stars compared."""

    ok: bool
    checked: bool
    expected: int
    matched: int
    message: str

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "expected": self.expected, "matched": self.matched,
                "message": self.message}


def check_wcs(wcs: WCS, shape: tuple[int, int], stars_xy: np.ndarray, radius_px: float = 3.0,
              catalog: np.ndarray | None = None) -> WcsCheck:
    """Compare the catalogue stars ``wcs`` puts in the frame with the detected stars.

    Parameters
    ----------
    wcs : WCS
        The header's celestial WCS.
    shape : (ny, nx)
        Image size, pixels.
    stars_xy : (n, 2) array
        Detected star positions, 0-based pixels.
    radius_px : float
        A catalogue star counts as found with a detection within this many pixels.
    catalog : structured array, optional
        ``ra``, ``dec``, ``mag`` rows; Tycho-2 around the field when not given.
    """
    ny, nx = shape
    centre = wcs.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
    corner = wcs.pixel_to_world_values(-0.5, -0.5)
    cosine = float(radec_to_xyz(float(centre[0]), float(centre[1])) @ radec_to_xyz(float(corner[0]), float(corner[1])))
    radius = float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))) * 1.05
    if catalog is None:
        try:
            catalog = tycho2_cone(float(centre[0]) % 360.0, float(centre[1]), radius)
        except CatalogError as exc:
            return WcsCheck(True, False, 0, 0, f"not checked: no catalogue ({exc})")
    x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
    margin = 2.0 * radius_px
    inside = (x >= margin) & (x <= nx - 1 - margin) & (y >= margin) & (y <= ny - 1 - margin)
    xy = np.column_stack([x[inside], y[inside]])[:CHECK_STARS]
    if len(xy) < MIN_CHECK_STARS:
        return WcsCheck(True, False, len(xy), 0, f"not checked: only {len(xy)} Tycho-2 star(s) in the field "
                                                 f"(at least {MIN_CHECK_STARS} needed); the header WCS is trusted")
    found = np.asarray(stars_xy, dtype=float).reshape(-1, 2)
    if not len(found):
        return WcsCheck(False, True, len(xy), 0, f"none of {len(xy)} Tycho-2 stars has a detected star: "
                                                 f"no stars detected")
    distance = np.hypot(xy[:, 0, None] - found[None, :, 0], xy[:, 1, None] - found[None, :, 1]).min(axis=1)
    matched = int((distance <= radius_px).sum())
    ok = matched >= MIN_MATCHED_FRACTION * len(xy)
    verdict = "confirmed" if ok else "contradicted"
    return WcsCheck(ok, True, len(xy), matched, f"{verdict} by Tycho-2: {matched} of the {len(xy)} brightest "
                                                f"catalogue stars within {radius_px:g} px of a detected star")
