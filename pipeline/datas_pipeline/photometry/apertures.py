"""The aperture rule: one radius and sky annulus per frame, from its seeing.

Used by every measurement of a target (the server's photometry stage, the command line's
``photometry`` and the site agent), so the same frame gives the same flux wherever it is
measured. Radius 1.5 x FWHM (at least 3 px): near the S/N optimum for a Moffat star and
forgiving of small centring errors; the annulus starts clear of the star's wings
(3 x FWHM, at least 3 px beyond the aperture) and holds enough sky pixels (to 5 x FWHM,
at least 8 px beyond the aperture).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Apertures:
    """Aperture radius and sky annulus (inner, outer), pixels, from the frame's FWHM (px)."""

    radius: float
    inner: float
    outer: float

    @classmethod
    def for_fwhm(cls, fwhm_px: float) -> Apertures:
        fwhm = float(fwhm_px) if np.isfinite(fwhm_px) and fwhm_px > 0 else 3.0
        radius = max(3.0, 1.5 * fwhm)
        return cls(radius, max(3.0 * fwhm, radius + 3.0), max(5.0 * fwhm, radius + 8.0))
