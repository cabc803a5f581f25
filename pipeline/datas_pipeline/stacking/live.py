"""Live stacking: frames arrive one at a time (arrays, FITS files, a watched folder) and join a mean.

:class:`LiveStacker` takes the first frame with enough stars as the reference, registers
every later frame on it (similarity: shift, rotation, meridian flip; the quality gates of
:mod:`datas_pipeline.registration.register`), refuses clouded frames, resamples accepted frames onto the
reference grid (flux-conserving Lanczos) and folds them into a per-pixel running mean and
variance (Welford, float64). The first ``min_frames_for_rejection`` frames are also kept;
when the last of them arrives the stack restarts from them with outliers removed around
their median (so an early cosmic ray cannot inflate a pixel's variance for good), and from
then on a new pixel further than ``pixel_rejection_sigma`` from the running mean is left
out (satellites, cosmic rays). Each added frame costs the same whatever the stack's depth:
detection, matching, one warp and a few array updates (plus, once, that restart).

With pixel rejection off, the live stack equals the batch mean of the accepted frames.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from datas_pipeline.display.stretch import render
from datas_pipeline.errors import FrameReadError, PipelineError
from datas_pipeline.io.fits import is_fits_path, read_frame
from datas_pipeline.registration.register import (
    ReferenceStars,
    RegistrationGates,
    prepare_reference,
    register_stars,
)
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.registration.warp import warp_image
from datas_pipeline.robust import MAD_TO_SIGMA, median_sigma


@dataclass
class LiveFrameReport:
    """What happened to one frame."""

    accepted: bool
    reason: str
    frames_stacked: int
    frames_total: int
    frames_rejected: int
    offset: tuple[float, float] = (float("nan"), float("nan"))
    rotation_deg: float = float("nan")
    inliers: int = 0
    snr_gain: float = 0.0
    source: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """JSON-serialisable record."""
        out = asdict(self)
        out["offset"] = [round(v, 4) for v in self.offset]
        return out


@dataclass
class _Accumulator:
    mean: np.ndarray
    m2: np.ndarray
    count: np.ndarray
    noise: float = 0.0
    early: list = field(default_factory=list)


class LiveStacker:
    """A running, registered, outlier-rejecting mean of frames as they arrive.

    Parameters
    ----------
    gates : RegistrationGates, optional
        Registration acceptance; the defaults allow any rotation (meridian flips).
    kernel : str
        Warp kernel, ``lanczos3`` or ``bicubic``.
    pixel_rejection_sigma : float or None
        Reject a new pixel this many standard deviations from the running mean (None: off).
    min_frames_for_rejection : int
        Stack depth before pixel rejection starts (the variance needs a few frames).
    min_star_fraction : float
        Refuse a frame showing fewer control stars than this fraction of the reference's
        (clouds, dew, a bumped focuser).
    max_stars : int
        Control stars detected per frame.
    """

    def __init__(self, gates: RegistrationGates | None = None, kernel: str = "lanczos3",
                 pixel_rejection_sigma: float | None = 5.0, min_frames_for_rejection: int = 5,
                 min_star_fraction: float = 0.3, max_stars: int = 300):
        self.gates = gates or RegistrationGates()
        self.kernel = kernel
        self.pixel_rejection_sigma = pixel_rejection_sigma
        self.min_frames_for_rejection = min_frames_for_rejection
        self.min_star_fraction = min_star_fraction
        self.max_stars = max_stars
        self.reset()

    def reset(self) -> None:
        """Forget the reference and the stack; the next good frame starts again."""
        self.reference: ReferenceStars | None = None
        self._acc: _Accumulator | None = None
        self.frames_total = 0
        self.frames_stacked = 0
        self.frames_rejected = 0
        self.header = fits.Header()

    # -- input ---------------------------------------------------------------------------
    def add(self, frame: np.ndarray | str | Path) -> LiveFrameReport:
        """Register and stack one frame (an array or a FITS path); never raises on a bad frame."""
        start = time.perf_counter()
        source = str(frame) if isinstance(frame, (str, Path)) else "array"
        self.frames_total += 1
        try:
            data, header = self._load(frame)
            report = self._add(data, header)
        except (FrameReadError, PipelineError) as exc:
            report = self._refuse(str(exc))
        report.source = source
        report.seconds = round(time.perf_counter() - start, 4)
        return report

    def _load(self, frame) -> tuple[np.ndarray, fits.Header]:
        if isinstance(frame, (str, Path)):
            # A raw one-shot-colour mosaic (BAYERPAT) is debayered first: registration and the
            # stack then work on whole RGB pixels, never on mosaic cells of different colours.
            loaded = read_frame(frame, debayer=True)
            data, header = loaded.data, loaded.header
        else:
            data, header = np.asarray(frame, dtype=np.float32), fits.Header()
        if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[0] != 3):
            raise PipelineError(f"expected a 2-D frame or (3, ny, nx) colour planes, got shape {data.shape}")
        if self._acc is not None and data.ndim != self._acc.mean.ndim:
            raise PipelineError("mono and colour frames cannot share a stack (the stack is "
                                f"{'colour' if self._acc.mean.ndim == 3 else 'mono'})")
        if self.reference is not None and data.shape[-2:] != self.reference.shape:
            raise PipelineError(f"frame is {data.shape[-1]}x{data.shape[-2]}, the stack "
                                f"{self.reference.shape[1]}x{self.reference.shape[0]}")
        return data, header

    def _refuse(self, reason: str) -> LiveFrameReport:
        """A refusal carries its reason only: a refused candidate's offset and rotation are no result."""
        self.frames_rejected += 1
        return LiveFrameReport(False, reason, self.frames_stacked, self.frames_total, self.frames_rejected,
                               snr_gain=float(np.sqrt(self.frames_stacked)))

    def _add(self, data: np.ndarray, header: fits.Header) -> LiveFrameReport:
        plane = data if data.ndim == 2 else data.mean(axis=0)  # colour: stars on the luminance
        stars = find_control_stars(plane, max_stars=self.max_stars)
        if self.reference is None:
            need = max(self.gates.min_inliers, 8)
            if len(stars) < need:
                return self._refuse(f"only {len(stars)} stars; a reference needs {need}")
            self.reference = prepare_reference(stars=stars, shape=plane.shape, max_stars=self.max_stars)
            self.header = header.copy()
            self._start(data)
            return self._accepted(0.0, 0.0, 0.0, len(stars))
        floor = self.min_star_fraction * len(self.reference.stars)
        if len(stars) < floor:
            return self._refuse(f"only {len(stars)} stars against {len(self.reference.stars)} in the reference: "
                                "clouds, dew or lost focus?")
        result = register_stars(self.reference, stars, plane.shape, gates=self.gates)
        if not result.accepted:
            return self._refuse(result.reason)
        planes = [data] if data.ndim == 2 else list(data)
        warped = [warp_image(p, result.transform, self.reference.shape, kernel=self.kernel).data for p in planes]
        self._accumulate(warped[0] if data.ndim == 2 else np.stack(warped))
        q = result.quality
        return self._accepted(q.dx, q.dy, q.rotation_deg, q.inliers)

    def _accepted(self, dx, dy, rotation, inliers) -> LiveFrameReport:
        self.frames_stacked += 1
        return LiveFrameReport(True, "ok", self.frames_stacked, self.frames_total, self.frames_rejected,
                               (float(dx), float(dy)), float(rotation), int(inliers),
                               float(np.sqrt(self.frames_stacked)))

    # -- the running mean ----------------------------------------------------------------
    def _start(self, data: np.ndarray) -> None:
        finite = np.isfinite(data)
        plane = data if data.ndim == 2 else data[1]  # colour: the noise of the green plane
        sample = plane[::4, ::4][np.isfinite(plane[::4, ::4])]
        noise = median_sigma(sample)[1] if sample.size else 0.0
        self._acc = _Accumulator(np.where(finite, data, 0.0).astype(np.float64), np.zeros(data.shape),
                                 finite.astype(np.int32), noise)
        if self.pixel_rejection_sigma is not None:
            self._acc.early.append(np.asarray(data, dtype=np.float32))

    def _accumulate(self, values: np.ndarray) -> None:
        acc = self._acc
        use = np.isfinite(values)
        rejecting = self.pixel_rejection_sigma is not None
        if rejecting and self.frames_stacked >= self.min_frames_for_rejection:
            with np.errstate(invalid="ignore", divide="ignore"):
                sigma = np.sqrt(acc.m2 / np.maximum(acc.count - 1, 1))
            # A floor at the frame noise keeps flat (saturated, blank) pixels from rejecting all.
            np.maximum(sigma, acc.noise, out=sigma)
            use &= ~(np.abs(values - acc.mean) > self.pixel_rejection_sigma * sigma) | (acc.count < 2)
        v = np.where(use, values, 0.0)
        acc.count += use
        n = np.maximum(acc.count, 1)
        delta = np.where(use, v - acc.mean, 0.0)
        acc.mean += delta / n
        acc.m2 += delta * np.where(use, v - acc.mean, 0.0)
        if rejecting and acc.early is not None:
            acc.early.append(values)
            if len(acc.early) >= self.min_frames_for_rejection:
                self._restart_from_early()

    def _restart_from_early(self) -> None:
        """Rebuild mean and variance from the first frames without their outliers (once)."""
        acc = self._acc
        stack = np.stack(acc.early)
        acc.early = None
        with np.errstate(invalid="ignore"):
            median = np.nanmedian(stack, axis=0)
            spread = MAD_TO_SIGMA * np.nanmedian(np.abs(stack - median), axis=0)
        np.maximum(spread, acc.noise, out=spread)
        keep = np.isfinite(stack) & ~(np.abs(stack - median) > self.pixel_rejection_sigma * spread)
        acc.count = keep.sum(axis=0).astype(np.int32)
        total = np.where(keep, stack, 0.0).sum(axis=0, dtype=np.float64)
        acc.mean = np.where(acc.count > 0, total / np.maximum(acc.count, 1), 0.0)
        acc.m2 = (np.where(keep, stack - acc.mean, 0.0) ** 2).sum(axis=0, dtype=np.float64)

    # -- output --------------------------------------------------------------------------
    @property
    def image(self) -> np.ndarray | None:
        """The current stack (float32, NaN where no frame has covered), or None before any frame."""
        if self._acc is None:
            return None
        return np.where(self._acc.count > 0, self._acc.mean, np.nan).astype(np.float32)

    @property
    def count(self) -> np.ndarray | None:
        """Frames stacked at each pixel (after pixel rejection)."""
        return None if self._acc is None else self._acc.count.copy()

    def preview(self, path: str | Path, stretch: str = "auto", max_size: int | None = 1024, bits: int = 8) -> Path:
        """Render the current stack as a stretched PNG/JPEG/TIFF preview."""
        if self._acc is None:
            raise PipelineError("nothing stacked yet: no preview")
        return render(self.image, path, stretch=stretch, bits=bits, max_size=max_size)

    def save(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write the current stack and its count map as FITS, with provenance."""
        if self._acc is None:
            raise PipelineError("nothing stacked yet")
        header = self.header.copy()
        header["NCOMBINE"] = (self.frames_stacked, "frames in the live stack")
        header["LSTOTAL"] = (self.frames_total, "frames offered")
        header["LSREJECT"] = (self.frames_rejected, "frames refused")
        header["STACKMTH"] = ("live mean", "running mean with pixel rejection")
        header["LSREJSIG"] = (str(self.pixel_rejection_sigma), "pixel rejection (sigma)")
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fits.HDUList([fits.PrimaryHDU(self.image, header=header),
                          fits.ImageHDU(self._acc.count.astype(np.int32), name="COUNT")]).writeto(path, overwrite=overwrite)
        except OSError as exc:
            raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from None
        return path


def watch_folder(directory: str | Path, stacker: LiveStacker, patterns: tuple[str, ...] = ("*",),
                 poll_seconds: float = 1.0, idle_timeout: float | None = None,
                 once: bool = False) -> Iterator[LiveFrameReport]:
    """Feed new FITS files in ``directory`` to ``stacker`` as they appear, oldest first.

    A file is taken once its size has stopped changing between two polls (a camera may
    still be writing it). ``once`` processes what is there and returns; otherwise the
    watch ends after ``idle_timeout`` seconds without a new file (None: never). ``patterns``
    are globs under ``directory`` (``"**/*"`` to recurse); of what they match, only FITS
    files (:func:`datas_pipeline.io.fits.is_fits_path`, any case, ``.fz`` too) are taken.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PipelineError(f"{directory}: not a directory")
    seen: set[Path] = set()
    sizes: dict[Path, int] = {}
    last_new = time.monotonic()
    while True:
        found = sorted({p for pattern in patterns for p in directory.glob(pattern)
                        if is_fits_path(p) and p.is_file()} - seen,
                       key=lambda p: (p.stat().st_mtime, p.name))
        ready = []
        for path in found:
            size = path.stat().st_size
            if once or sizes.get(path) == size:
                ready.append(path)
            sizes[path] = size
        for path in ready:
            seen.add(path)
            last_new = time.monotonic()
            yield stacker.add(path)
        if once and not (set(found) - set(ready)):
            return
        if idle_timeout is not None and time.monotonic() - last_new > idle_timeout:
            return
        time.sleep(poll_seconds)
