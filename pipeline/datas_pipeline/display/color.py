"""Colour from per-filter masters: register them on each other, neutralise, white-balance, LRGB, palettes.

Masters (linear, one filter each) are first registered on one of them (G, or L when given)
with the star registration and its gates, and resampled onto its grid. Then:

- **Background neutralisation**: each plane's sky level (SExtractor's global background,
  via :func:`datas_pipeline.detection.extract.estimate_background`) is subtracted, so the sky is grey.
- **Star-based white balance**: aperture fluxes of the same unsaturated stars in every
  plane; R and B are scaled so the median star has R/G = B/G = 1 (the average star is
  white; a photometric calibration against a catalogue is a later refinement).
- **LRGB**: the colour image and the luminance are stretched separately; the colour keeps
  its chromaticity and takes L's brightness.
- **Narrowband palettes**: masters named by filter (HA, OIII, SII) are mapped to R, G, B
  (SHO: the Hubble palette; HOO; HSO) after equalising their strengths, since lines differ
  by orders of magnitude.

Planes are (3, ny, nx) float32, R, G, B.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sep

from datas_pipeline.detection.extract import estimate_background
from datas_pipeline.display.stretch import auto_stretch, save_display, thumbnail
from datas_pipeline.errors import ColorError
from datas_pipeline.registration.register import Registration, prepare_reference, register_image
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.registration.warp import warp_image

PALETTES = {"SHO": ("SII", "HA", "OIII"), "HOO": ("HA", "OIII", "OIII"), "HSO": ("HA", "SII", "OIII")}


@dataclass
class ColorImage:
    """A linear colour image and how it was made."""

    rgb: np.ndarray
    luminance: np.ndarray | None = None
    background: tuple[float, ...] = ()
    white_balance: tuple[float, ...] = (1.0, 1.0, 1.0)
    registrations: dict[str, Registration] = field(default_factory=dict)


def register_masters(masters: dict[str, np.ndarray], reference: str) -> tuple[dict[str, np.ndarray], dict]:
    """Resample every master onto ``masters[reference]``'s grid; refuse a failed registration."""
    if reference not in masters:
        raise ColorError(f"no {reference} master to register on")
    ref_image = np.asarray(masters[reference], dtype=np.float32)
    ref_stars = prepare_reference(np.nan_to_num(ref_image, nan=float(np.nanmedian(ref_image))))
    out, registrations = {}, {}
    for name, image in masters.items():
        image = np.asarray(image, dtype=np.float32)
        if name == reference:
            out[name] = ref_image
            continue
        result = register_image(ref_stars, np.nan_to_num(image, nan=float(np.nanmedian(image))))
        registrations[name] = result
        if not result.accepted:
            raise ColorError(f"cannot register the {name} master on {reference}: {result.reason}")
        out[name] = warp_image(image, result.transform, ref_image.shape).data
    return out, registrations


def _check_shapes(masters: dict[str, np.ndarray]) -> None:
    shapes = {name: np.shape(m) for name, m in masters.items()}
    if any(len(s) != 2 for s in shapes.values()):
        raise ColorError(f"every master must be a 2-D image: {shapes}")
    if len(set(shapes.values())) > 1:
        raise ColorError(f"masters differ in size {shapes}: let them be registered (register=True)")


def neutralize_background(planes: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """Subtract each plane's global sky level; return the planes and the levels (image units)."""
    levels = []
    out = np.empty_like(planes)
    for i, plane in enumerate(planes):
        finite = np.isfinite(plane)
        filled = np.where(finite, plane, np.nanmedian(plane)).astype(np.float32)
        level = estimate_background(filled).global_level
        levels.append(level)
        out[i] = np.where(finite, plane - level, np.nan)
    return out, tuple(levels)


def star_white_balance(planes: np.ndarray, min_stars: int = 5) -> tuple[float, float, float]:
    """Factors for (R, G, B) that make the median star's R/G and B/G equal to one."""
    luminance = np.nan_to_num(planes.sum(axis=0))
    stars = find_control_stars(luminance, max_stars=200)
    if len(stars) < min_stars:
        raise ColorError(f"only {len(stars)} stars to white-balance on (need {min_stars}); "
                         "pass white_balance=False or give the factors")
    radius = float(np.clip(2.0 * np.median(stars["fwhm"]), 3.0, 15.0))
    fluxes = []
    for plane in planes:
        data = np.ascontiguousarray(np.nan_to_num(plane), dtype=np.float64)
        flux, _, flag = sep.sum_circle(data, stars["x"], stars["y"], radius,
                                       bkgann=(radius * 1.5, radius * 2.5))
        fluxes.append(np.where(flag == 0, flux, np.nan))
    fluxes = np.array(fluxes)
    # Saturated or blended stars sit at the bright end; faint ones are noisy: keep the middle.
    peak_ok = stars["peak"] < 0.8 * np.nanmax(luminance)
    good = peak_ok & np.all(np.isfinite(fluxes), axis=0) & np.all(fluxes > 0, axis=0)
    if good.sum() < min_stars:
        raise ColorError(f"only {int(good.sum())} unsaturated stars measured in every plane (need {min_stars})")
    red = np.median(fluxes[0, good] / fluxes[1, good])
    blue = np.median(fluxes[2, good] / fluxes[1, good])
    return float(1.0 / red), 1.0, float(1.0 / blue)


def combine_rgb(r: np.ndarray, g: np.ndarray, b: np.ndarray, luminance: np.ndarray | None = None,
                register: bool = True, white_balance: bool | tuple[float, float, float] = True) -> ColorImage:
    """Combine R, G, B (and optional L) masters into a neutral, white-balanced linear image.

    ``white_balance`` is True (by the stars), False (none) or explicit (R, G, B) factors.
    """
    masters = {"R": r, "G": g, "B": b}
    if luminance is not None:
        masters["L"] = luminance
    reference = "L" if luminance is not None else "G"
    if register:
        masters, registrations = register_masters(masters, reference)
    else:
        _check_shapes(masters)
        registrations = {}
    planes = np.stack([np.asarray(masters[k], dtype=np.float32) for k in "RGB"])
    planes, levels = neutralize_background(planes)
    if white_balance is True:
        factors = star_white_balance(planes)
    elif white_balance is False:
        factors = (1.0, 1.0, 1.0)
    else:
        factors = tuple(float(f) for f in white_balance)
    planes *= np.array(factors, dtype=np.float32)[:, None, None]
    lum = None
    if luminance is not None:
        lum, _ = neutralize_background(np.asarray(masters["L"], dtype=np.float32)[None])
        lum = lum[0]
    return ColorImage(planes, lum, levels, factors, registrations)


def combine_palette(channels: dict[str, np.ndarray], palette: str = "SHO", register: bool = True) -> ColorImage:
    """Map narrowband masters (keys HA, OIII, SII) to R, G, B by a named palette."""
    palette = palette.upper()
    if palette not in PALETTES:
        raise ColorError(f"unknown palette {palette!r}; choose one of {', '.join(PALETTES)}")
    channels = {k.upper(): v for k, v in channels.items()}
    needed = sorted(set(PALETTES[palette]))
    missing = [k for k in needed if k not in channels]
    if missing:
        raise ColorError(f"palette {palette} needs masters for {', '.join(needed)}; missing {', '.join(missing)}")
    masters = {k: channels[k] for k in needed}
    reference = "HA" if "HA" in masters else needed[0]
    if register:
        masters, registrations = register_masters(masters, reference)
    else:
        _check_shapes(masters)
        registrations = {}
    names = list(masters)
    planes, levels = neutralize_background(np.stack([np.asarray(masters[k], np.float32) for k in names]))
    # Equalise line strengths: each channel's bright end (99.9th percentile) to one.
    for i, plane in enumerate(planes):
        top = np.nanpercentile(plane[::2, ::2], 99.9)
        planes[i] = plane / top if top > 0 else plane
    rgb = np.stack([planes[names.index(k)] for k in PALETTES[palette]])
    return ColorImage(rgb, None, tuple(levels), (1.0, 1.0, 1.0), registrations)


def lrgb(rgb_display: np.ndarray, l_display: np.ndarray) -> np.ndarray:
    """Give a stretched colour image the brightness of a stretched luminance (both in [0, 1])."""
    y = 0.2126 * rgb_display[0] + 0.7152 * rgb_display[1] + 0.0722 * rgb_display[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(y > 1e-4, l_display / y, 0.0)
    out = rgb_display * ratio[None]
    grey = y <= 1e-4
    out[:, grey] = l_display[grey]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def render_color(image: ColorImage, path: str | Path, bits: int = 8, max_size: int | None = None,
                 flip: bool = True) -> Path:
    """Stretch (linked auto-stretch, LRGB when there is a luminance) and write PNG/JPEG/TIFF."""
    rgb = thumbnail(image.rgb, max_size) if max_size else image.rgb
    display = auto_stretch(rgb, linked=True)
    if image.luminance is not None:
        lum = thumbnail(image.luminance, max_size) if max_size else image.luminance
        display = lrgb(display, auto_stretch(lum))
    return save_display(path, display, bits=bits, flip=flip)
