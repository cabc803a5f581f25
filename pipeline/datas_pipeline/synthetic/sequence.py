"""Seeded synthetic sequences with known truth, for registration, stacking and live-stacking tests.

A sequence is one patch of sky seen through a moving, rotating, occasionally mirrored camera:
every frame carries its ``Pose`` (the truth for registration), and the artefacts injected
into it (hot pixels, cosmic rays, satellite trails, clouds) as masks, so tests can assert
that registration refuses what it must and stacking rejects what it must. Built on
:mod:`datas_pipeline.synthetic.fields`; coordinates are 0-based numpy order (``x`` column, ``y`` row),
fluxes in electrons, images in ADU (float32).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from datas_pipeline.synthetic.fields import (
    STAR_DTYPE,
    expose,
    random_stars,
    render_stars,
    satellite_streak,
    transform_points,
)


@dataclass(frozen=True)
class Pose:
    """Where the camera points, relative to the reference frame.

    A reference pixel ``(x, y)`` lands at ``transform_points(x, y, dx, dy, rotation_deg, scale,
    center, flip_x)`` in the frame, with ``center`` the reference frame's centre. ``dx, dy``
    (px) are therefore the displacement of the reference centre.
    """

    dx: float = 0.0
    dy: float = 0.0
    rotation_deg: float = 0.0
    scale: float = 1.0
    flip_x: bool = False

    def apply(self, x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Map reference pixel coordinates into this frame (px)."""
        center = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
        return transform_points(
            x, y, self.dx, self.dy, self.rotation_deg, self.scale, center=center, flip_x=self.flip_x
        )


@dataclass
class SyntheticFrame:
    """One exposure and its truth."""

    data: np.ndarray
    pose: Pose
    transparency: float = 1.0
    hot_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=int))
    cosmic_mask: np.ndarray | None = None
    trail_mask: np.ndarray | None = None


@dataclass
class SyntheticSequence:
    """Frames of one field, the sky's stars in reference coordinates, and the render settings."""

    frames: list[SyntheticFrame]
    stars: np.ndarray
    shape: tuple[int, int]
    fwhm: float
    sky: float
    gain: float

    def corner_error(self, index: int, mapping) -> float:
        """Largest distance (px) between ``mapping`` and the truth at the reference corners.

        ``mapping(x, y) -> (x', y')`` takes reference pixels into frame ``index``.
        """
        ny, nx = self.shape
        cx = np.array([0.0, nx - 1.0, 0.0, nx - 1.0])
        cy = np.array([0.0, 0.0, ny - 1.0, ny - 1.0])
        tx, ty = self.frames[index].pose.apply(cx, cy, self.shape)
        mx, my = mapping(cx, cy)
        return float(np.max(np.hypot(np.asarray(mx) - tx, np.asarray(my) - ty)))

    def overlap_error(self, index: int, mapping, n: int = 17) -> float:
        """Largest error (px) of ``mapping`` over a grid of the reference seen in frame ``index``."""
        ny, nx = self.shape
        gx, gy = np.meshgrid(np.linspace(0, nx - 1, n), np.linspace(0, ny - 1, n))
        tx, ty = self.frames[index].pose.apply(gx.ravel(), gy.ravel(), self.shape)
        inside = (tx >= 0) & (tx <= nx - 1) & (ty >= 0) & (ty <= ny - 1)
        mx, my = mapping(gx.ravel()[inside], gy.ravel()[inside])
        return float(np.max(np.hypot(np.asarray(mx) - tx[inside], np.asarray(my) - ty[inside])))

    def ideal_reference(self) -> np.ndarray:
        """The noise-free star image in reference coordinates (electrons, no sky)."""
        return render_stars(self.shape, self.stars, fwhm=self.fwhm)


def random_poses(
    n_frames: int,
    rng: np.random.Generator,
    max_shift: float = 20.0,
    max_rotation_deg: float = 0.0,
    scale_sigma: float = 0.0,
    drift: tuple[float, float] = (0.0, 0.0),
) -> list[Pose]:
    """Dithered poses; frame 0 is the reference (identity). ``drift`` adds px per frame."""
    poses = [Pose()]
    for i in range(1, n_frames):
        poses.append(
            Pose(
                dx=float(rng.uniform(-max_shift, max_shift) + drift[0] * i),
                dy=float(rng.uniform(-max_shift, max_shift) + drift[1] * i),
                rotation_deg=float(rng.uniform(-max_rotation_deg, max_rotation_deg)),
                scale=float(1.0 + rng.normal(0.0, scale_sigma)) if scale_sigma else 1.0,
            )
        )
    return poses


def _sky_stars(shape: tuple[int, int], n_stars: int, rng: np.random.Generator, reach: float,
               flux_range: tuple[float, float]) -> np.ndarray:
    """Stars over the reference field enlarged by ``reach`` px each side, at constant density."""
    ny, nx = shape
    big = (int(ny + 2 * reach), int(nx + 2 * reach))
    n_big = int(round(n_stars * big[0] * big[1] / (ny * nx)))
    stars = random_stars(big, n_big, rng, flux_range=flux_range)
    stars["x"] -= reach
    stars["y"] -= reach
    return stars


def inject_hot_pixels(image: np.ndarray, positions: np.ndarray, level_adu: float) -> None:
    """Add ``level_adu`` at fixed detector ``positions`` (rows of ``(y, x)``), in place."""
    if len(positions):
        image[positions[:, 0], positions[:, 1]] += level_adu


def inject_cosmic_rays(image: np.ndarray, count: int, rng: np.random.Generator,
                       amplitude: tuple[float, float] = (3e3, 3e4)) -> np.ndarray:
    """Add ``count`` cosmic-ray hits (single pixels and short tracks) in place; return their mask.

    Unlike :func:`datas_pipeline.synthetic.fields.add_cosmic_rays` (tracks of one energy, in e-, on a
    detector model), each pixel of a track gets its own amplitude; the seeded sequences the
    stacking tests are calibrated on depend on this draw order.
    """
    ny, nx = image.shape
    mask = np.zeros(image.shape, dtype=bool)
    for _ in range(count):
        y, x = int(rng.integers(2, ny - 2)), int(rng.integers(2, nx - 2))
        length = int(rng.integers(1, 4))
        step_y, step_x = (int(v) for v in rng.integers(-1, 2, size=2))
        for k in range(length):
            yy, xx = y + k * step_y, x + k * step_x
            image[yy, xx] += rng.uniform(*amplitude)
            mask[yy, xx] = True
    return mask


def inject_trail(image: np.ndarray, rng: np.random.Generator, amplitude_adu: float = 2000.0,
                 width_px: float = 1.5) -> np.ndarray:
    """Add a straight satellite trail across the frame in place; return the mask of its core.

    The trail (:func:`datas_pipeline.synthetic.fields.satellite_streak`) passes through a random point
    of the central part of the frame at a random angle, with a Gaussian cross-section of FWHM
    ``width_px`` and peak ``amplitude_adu``; the mask covers pixels within 2 FWHM of its axis.
    """
    ny, nx = image.shape
    angle = rng.uniform(0, np.pi)
    x0, y0 = rng.uniform(0.3 * nx, 0.7 * nx), rng.uniform(0.3 * ny, 0.7 * ny)
    reach = float(np.hypot(nx, ny))  # past both edges: the trail crosses the whole frame
    dx, dy = reach * np.cos(angle), reach * np.sin(angle)
    trail = satellite_streak(image.shape, (x0 - dx, y0 - dy), (x0 + dx, y0 + dy),
                             electrons_per_px=amplitude_adu, width_fwhm=width_px)
    image += trail.astype(image.dtype)
    sigma = width_px / 2.3548
    return trail > amplitude_adu * np.exp(-0.5 * (2.0 * width_px / sigma) ** 2)


def make_sequence(
    n_frames: int,
    shape: tuple[int, int] = (256, 256),
    n_stars: int = 150,
    seed: int = 0,
    poses: Sequence[Pose] | None = None,
    max_shift: float = 20.0,
    max_rotation_deg: float = 0.0,
    scale_sigma: float = 0.0,
    drift: tuple[float, float] = (0.0, 0.0),
    fwhm: float = 3.0,
    sky: float = 200.0,
    read_noise: float = 5.0,
    gain: float = 1.0,
    flux_range: tuple[float, float] = (2e3, 2e5),
    hot_pixel_fraction: float = 0.0,
    hot_pixel_adu: float = 8000.0,
    cosmic_rays_per_frame: int = 0,
    trail_frames: Sequence[int] = (),
    trail_adu: float = 2000.0,
    cloudy_frames: Sequence[int] = (),
    cloud_transparency: float = 0.03,
    cloud_sky_factor: float = 4.0,
) -> SyntheticSequence:
    """Render a seeded sequence of one field with known poses and injected artefacts.

    Parameters
    ----------
    n_frames : int
        Frames to render; frame 0 is the reference unless ``poses`` says otherwise.
    shape : (ny, nx)
        Frame size in px.
    n_stars : int
        Stars per reference-frame area (the sky extends beyond it so moved frames are full).
    poses : sequence of Pose, optional
        Explicit truth; otherwise :func:`random_poses` with ``max_shift`` (px),
        ``max_rotation_deg``, ``scale_sigma`` and ``drift`` (px/frame).
    fwhm, sky, read_noise, gain
        Moffat FWHM (px), sky (e-/px), read noise (e-), gain (e-/ADU).
    hot_pixel_fraction, hot_pixel_adu
        Fixed detector defects present in every frame.
    cosmic_rays_per_frame : int
        Cosmic-ray hits per frame (1-3 px tracks of 3e3-3e4 ADU).
    trail_frames, trail_adu
        Frames that get one satellite trail, and its peak (ADU).
    cloudy_frames, cloud_transparency, cloud_sky_factor
        Frames seen through cloud: star flux times ``cloud_transparency``, sky times
        ``cloud_sky_factor`` with a gradient across the frame.
    """
    rng = np.random.default_rng(seed)
    if poses is None:
        poses = random_poses(n_frames, rng, max_shift, max_rotation_deg, scale_sigma, drift)
    if len(poses) != n_frames:
        raise ValueError(f"{len(poses)} poses for {n_frames} frames")
    ny, nx = shape
    reach = max(max(abs(p.dx), abs(p.dy)) for p in poses) + 0.75 * max(ny, nx)
    stars = _sky_stars(shape, n_stars, rng, reach, flux_range)
    n_hot = int(round(hot_pixel_fraction * ny * nx))
    hot = np.column_stack([rng.integers(0, ny, n_hot), rng.integers(0, nx, n_hot)]) if n_hot else (
        np.zeros((0, 2), dtype=int))
    yy, xx = np.mgrid[0:ny, 0:nx]
    frames = []
    for i, pose in enumerate(poses):
        fx, fy = pose.apply(stars["x"], stars["y"], shape)
        inside = (fx > -5 * fwhm) & (fx < nx + 5 * fwhm) & (fy > -5 * fwhm) & (fy < ny + 5 * fwhm)
        moved = np.zeros(int(inside.sum()), dtype=STAR_DTYPE)
        moved["x"], moved["y"] = fx[inside], fy[inside]
        transparency = cloud_transparency if i in cloudy_frames else 1.0
        moved["flux"] = stars["flux"][inside] * transparency
        electrons = render_stars(shape, moved, fwhm=fwhm * pose.scale)
        frame_sky = sky
        if i in cloudy_frames:
            electrons = electrons + sky * (cloud_sky_factor - 1.0) * (0.6 + 0.8 * xx / nx)
        image = expose(electrons, rng, sky=frame_sky, read_noise=read_noise, gain=gain)
        inject_hot_pixels(image, hot, hot_pixel_adu)
        cosmic = inject_cosmic_rays(image, cosmic_rays_per_frame, rng) if cosmic_rays_per_frame else None
        trail = inject_trail(image, rng, trail_adu) if i in trail_frames else None
        frames.append(SyntheticFrame(image, pose, transparency, hot, cosmic, trail))
    inside_ref = (stars["x"] > -3 * fwhm) & (stars["x"] < nx + 3 * fwhm) & (
        stars["y"] > -3 * fwhm) & (stars["y"] < ny + 3 * fwhm)
    return SyntheticSequence(frames, stars[inside_ref], shape, fwhm, sky, gain)
