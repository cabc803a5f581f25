"""``find_movers``: one call from an aligned sequence to movers and streaks with positions.

The passes, each reading the frames once: (1) per-frame noise and the frames to reject,
(2) the static sky in row bands, (3) per frame the residual, its sharp pixels, its SNR
map, its streaks and peaks, the star positions (jitter) and the time-bin stacks. Then the
searches over the SNR maps: the velocity grid (slow), pair seeds (fast and faint), the
frame-to-frame linker (fast and bright), the drifting-centroid search (too slow for the
median); finally the astrometry of every accepted track.
"""
from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datas_pipeline.movers.detect import Streak, find_streaks, local_peaks
from datas_pipeline.movers.linking import link_detections
from datas_pipeline.movers.sequence import (
    FrameSet,
    MoverError,
    Progress,
    SequenceTimes,
    gaussian_sigma,
    matched_filter,
    new_cube,
    residual,
    sequence_times,
    sharp_pixels,
    static_sky,
)
from datas_pipeline.movers.slow import slow_movers, windowed_centroids
from datas_pipeline.movers.tracking import (
    TRACK_DTYPE,
    TrackThresholds,
    grid_search,
    merge_duplicates,
    refine,
    score_tracks,
    seed_pairs,
    velocity_step,
)
from datas_pipeline.robust import robust_sigma

# A frame whose stars come through at less than this fraction of their usual flux is clouded.
MIN_TRANSPARENCY = 0.6


@dataclass(frozen=True)
class MoverOptions:
    """Settings of the search (rates in px/frame, thresholds in SNR units).

    ``fwhm_px`` None measures it on the static sky; ``grid_max_rate`` is where the velocity
    grid hands over to pair seeds, ``max_rate`` the fastest synthetic-tracking rate and
    ``link_max_rate`` the linker's; ``max_star_fraction`` vetoes trajectories that spend
    that fraction of the frames on bright stars; ``workers`` > 1 runs the grid in a process pool;
    ``memory_bytes`` bounds one band of all frames and the in-memory SNR cube.
    """

    fwhm_px: float | None = None
    thresholds: TrackThresholds = field(default_factory=TrackThresholds)
    seed_snr: float = 2.5
    grid_max_rate: float = 1.0
    max_rate: float = 12.0
    link_max_rate: float = 60.0
    link_snr: float = 5.0
    min_frames_fraction: float = 0.4
    streak_threshold: float = 3.0
    slow_z: float = 6.5
    max_star_fraction: float = 0.6
    border_px: int = 6
    workers: int = 1
    memory_bytes: int = 1024 * 2**20
    searches: tuple[str, ...] = ("grid", "seed", "link", "slow")


@dataclass
class Track:
    """A mover: straight constant-rate motion (pixel track at ``t_ref``) and its per-frame positions."""

    kind: str
    source: str
    x: float
    y: float
    vx: float
    vy: float
    snr: float
    half_snr: tuple[float, float]
    positions: list[dict] = field(default_factory=list)
    fit: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """px/frame."""
        return float(np.hypot(self.vx, self.vy))

    @property
    def angle_deg(self) -> float:
        """Direction of motion, degrees from +x towards +y, in [0, 360)."""
        return float(np.degrees(np.arctan2(self.vy, self.vx)) % 360.0)


@dataclass
class MoverResult:
    """What the search found and how: tracks, streaks, per-frame records, parameters, timings."""

    tracks: list[Track]
    streaks: list[Streak]
    frames: list[dict]
    times: SequenceTimes
    parameters: dict
    timings: dict
    shape: tuple[int, int]
    stack: np.ndarray | None = None
    names: list[str] = field(default_factory=list)


def _reject_noisy(sigmas: np.ndarray) -> tuple[np.ndarray, list[str]]:
    med = float(np.median(sigmas))
    spread = float(np.median(np.abs(sigmas - med))) * 1.4826 or 0.05 * med
    bad = sigmas > med + max(5.0 * spread, 0.25 * med)
    return ~bad, [f"noise {s:.1f} ADU against a median of {med:.1f}" if b else ""
                  for s, b in zip(sigmas, bad, strict=True)]


def find_movers(frames: Sequence[np.ndarray | str | Path] | np.ndarray, times: Sequence[float] | None = None,
                wcs=None, options: MoverOptions | None = None, headers: Sequence | None = None,
                names: Sequence[str] | None = None, progress: Progress | None = None) -> MoverResult:
    """Find moving objects and streaks in an aligned sequence.

    Parameters
    ----------
    frames : sequence of 2-D arrays or FITS paths, or a 3-D array
        Aligned frames (ADU), all the same shape; paths are read by row bands.
    times : sequence of float, optional
        Mid-exposure times in seconds (any origin). Otherwise DATE-OBS + EXPTIME/2 from the
        headers, and frame order when a frame has none.
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of the aligned grid; gives RA/Dec per position.
    options : MoverOptions, optional
    headers : sequence of astropy.io.fits.Header, optional
        Headers for array input (paths bring their own).
    names : sequence of str, optional
        Frame names for the report (file names for paths).
    progress : callable, optional
        ``progress(stage, done, total)``.

    Raises
    ------
    MoverError
        Fewer than 5 usable frames, or frames that differ in size.
    """
    options = options or MoverOptions()
    clock = {"start": _time.perf_counter()}
    source = list(frames) if not isinstance(frames, np.ndarray) else [f for f in frames]
    if len(source) < 5:
        raise MoverError(f"{len(source)} frames: the mover search needs at least 5")
    try:
        fs = FrameSet(source)
    except Exception as exc:
        raise MoverError(str(exc)) from None
    try:
        return _search(fs, times, wcs, options, headers, names, progress, clock)
    finally:
        fs.close()


def _search(fs, times, wcs, options, headers, names, progress, clock) -> MoverResult:
    n = len(fs)
    ny, nx = fs.shape
    if times is not None:
        seconds = np.asarray(times, float)
        if seconds.shape != (n,) or not np.all(np.isfinite(seconds)) or np.unique(seconds).size != n:
            raise MoverError("times must be one distinct finite number (seconds) per frame")
        seconds = seconds - seconds[0]
        steps = np.diff(np.sort(seconds))
        cadence = float(np.median(steps[steps > 0]))
        seq_times = SequenceTimes(seconds, seconds / cadence, cadence, [None] * n, np.full(n, np.nan), "given")
    else:
        seq_times = sequence_times(headers if headers is not None else fs.headers, n)
    t = seq_times.frame_units
    names = list(names) if names is not None else list(fs.names)
    sigmas0 = np.array([robust_sigma(fs.sample(i)) for i in range(n)])
    if not np.all(np.isfinite(sigmas0)):
        bad = [names[i] for i in range(n) if not np.isfinite(sigmas0[i])]
        raise MoverError(f"frames without finite pixels: {', '.join(bad[:5])}")
    used, reasons = _reject_noisy(sigmas0)
    if used.sum() < 5:
        raise MoverError(f"only {int(used.sum())} frames pass the noise check; need 5")
    sky = static_sky(fs, used, options.memory_bytes, progress)
    clock["static_sky"] = _time.perf_counter()
    fwhm = options.fwhm_px or _measure_fwhm(sky.model)
    psf = gaussian_sigma(fwhm)
    border = max(options.border_px, int(np.ceil(2 * fwhm)))
    cube, scratch = new_cube((n, ny, nx), options.memory_bytes)
    stars = _reference_stars(sky.model, float(np.median(sky.sigmas[used])), fwhm, border)
    n_bins = int(min(6, max(3, used.sum() // 4)))
    bin_of = np.full(n, -1)
    bin_of[used] = np.minimum((np.arange(int(used.sum())) * n_bins) // int(used.sum()), n_bins - 1)
    bins = np.zeros((n_bins, ny, nx), np.float32)
    peaks, streaks, records = [], [], []
    offsets = np.full((n, 2), np.nan)
    transparency = np.ones(n)
    for i in range(n):
        res = residual(fs, sky, i)
        sharp = sharp_pixels(res, sky.sigmas[i])
        res[sharp] = 0.0
        snr, scale = matched_filter(res, sky.sigmas[i], sky.noise_weight, psf, border)
        frame_streaks, streak_mask = find_streaks(snr, i, fwhm, options.streak_threshold)
        snr[streak_mask] = 0.0
        cube[i] = snr
        streaks.extend(frame_streaks)
        peaks.append(local_peaks(snr, options.seed_snr, size=5))
        light = res + sky.references[sky.block[i]]  # the frame minus its sky, hits repaired
        if len(stars):
            cx, cy, flux = windowed_centroids(light[None], stars[:, 0], stars[:, 1], fwhm)
            offsets[i] = np.nanmedian(cx[:, 0] - stars[:, 0]), np.nanmedian(cy[:, 0] - stars[:, 1])
            transparency[i] = float(np.nanmedian(flux[:, 0] / stars[:, 2]))
        if transparency[i] < MIN_TRANSPARENCY:
            bin_of[i] = -1  # a clouded frame: out of the stacks as of the searches below
        if bin_of[i] >= 0:
            bins[bin_of[i]] += light
        records.append({"file": names[i], "index": i, "time": seq_times.utc[i], "t_frame": float(t[i]),
                        "sky_adu": float(sky.levels[i]), "noise_adu": float(sky.sigmas[i]),
                        "sharp_pixels": int(sharp.sum()), "streaks": len(frame_streaks),
                        "filter_scale": scale})
        if progress:
            progress("residuals", i + 1, n)
    clock["residuals"] = _time.perf_counter()
    # Clouded frames: the stars come through at a fraction of their median-stack flux.
    for i in np.flatnonzero(used & (transparency < MIN_TRANSPARENCY)):
        used[i] = False
        reasons[i] = f"stars at {transparency[i]:.0%} of their usual flux (cloud?)"
    jitter = _jitter(offsets[used])
    for i, record in enumerate(records):
        record.update(used=bool(used[i]), reason=reasons[i] or None, dx_px=_num(offsets[i, 0]),
                      dy_px=_num(offsets[i, 1]), transparency=_num(transparency[i]))
    counts = np.bincount(bin_of[used], minlength=n_bins).astype(float)
    bins = bins / np.maximum(counts, 1)[:, None, None]
    bin_t = np.array([t[used & (bin_of == b)].mean() for b in range(n_bins)])
    t_ref = float(0.5 * (t[used].min() + t[used].max()))
    span = float(t[used].max() - t[used].min())
    dv = velocity_step(fwhm, span)
    th = options.thresholds
    static_rate = 1.5 * fwhm / span
    found, info = [], {}
    if "grid" in options.searches and options.grid_max_rate > static_rate:
        cand, info["grid"] = grid_search(cube, t, used, t_ref, fwhm, static_rate, options.grid_max_rate,
                                         threshold=0.75 * th.score, workers=options.workers)
        found.append(cand)
        clock["grid"] = _time.perf_counter()
    if "seed" in options.searches:
        cand = seed_pairs(peaks, cube, t, used, t_ref, max(static_rate, 0.5 * options.grid_max_rate), options.max_rate)
        info["seed"] = {"seeds": int(len(cand))}
        found.append(cand)
        clock["seed"] = _time.perf_counter()
    tracks = np.concatenate(found) if found else np.zeros(0, TRACK_DTYPE)
    th = _scaled_for_trials(th, info.get("grid", {}).get("velocities", 0), ny * nx / 4.0)
    on_stars = bright_star_mask(sky.model, float(np.median(sky.sigmas[used])), fwhm)
    tracks = _confirm(cube, t, used, t_ref, tracks, dv, fwhm, th, options, ny, nx, on_stars)
    if "link" in options.searches:
        linked = link_detections(peaks, t, used, t_ref, min_step_px=max(1.5, 3 * jitter),
                                 max_rate=options.link_max_rate, tolerance_px=max(2.0, 3 * jitter + fwhm / 2),
                                 min_snr=options.link_snr)
        info["link"] = {"tracks": int(len(linked))}
        linked = linked[np.hypot(linked["vx"], linked["vy"]) * span >= 1.5 * fwhm]
        # Points strung from star to star (residuals of seeing or resampling) are no mover.
        linked = linked[_time_on_stars(linked, t - t_ref, used, on_stars) < options.max_star_fraction]
        # The same trajectory score (and halves) as the other searches, so "snr" means one thing.
        linked = score_tracks(cube, t - t_ref, used, linked, th.clip)
        tracks = merge_duplicates(np.concatenate([tracks, linked]), fwhm, dv)
        clock["link"] = _time.perf_counter()
    if "slow" in options.searches:
        slow, info["slow"] = slow_movers(bins, bin_t, counts, float(np.median(sky.sigmas[used])), fwhm, t_ref,
                                         v_max=max(2 * static_rate, 0.5), z_threshold=options.slow_z,
                                         border=border,
                                         noise_scale=float(np.median([r["filter_scale"] for r in records])),
                                         jitter_px=jitter)
        tracks = merge_duplicates(np.concatenate([tracks, slow]), fwhm, dv)
        clock["slow"] = _time.perf_counter()
    stack_image = bins.mean(axis=0)

    def read(k, r0, c0, size):
        return (fs.rows(k, r0, r0 + size)[:, c0:c0 + size] - np.float32(sky.levels[k])
                - sky.references[sky.block[k], r0:r0 + size, c0:c0 + size])

    def read_light(k, r0, c0, size):
        return fs.rows(k, r0, r0 + size)[:, c0:c0 + size] - np.float32(sky.levels[k])

    from datas_pipeline.movers.measure import measure_track

    result_tracks = [measure_track(row, read, cube, t, used, t_ref, fwhm, sky.sigmas, (ny, nx), seq_times,
                                   names, wcs, bins if row["source"] == "slow" else None, bin_t, read_light)
                     for row in tracks]
    result_tracks = _distinct(result_tracks, fwhm, dv)
    clock["astrometry"] = _time.perf_counter()
    if scratch is not None:
        del cube
        scratch.unlink(missing_ok=True)
    parameters = {"fwhm_px": fwhm, "jitter_px": jitter, "frames": n, "frames_used": int(used.sum()),
                  "time_source": seq_times.source, "cadence_s": seq_times.cadence_s,
                  "velocity_step_px_per_frame": dv, "static_rate_px_per_frame": static_rate,
                  "grid_max_rate": options.grid_max_rate, "max_rate": options.max_rate,
                  "link_max_rate": options.link_max_rate, "score_threshold": th.score,
                  "half_threshold": th.half, "clip": th.clip, "seed_snr": options.seed_snr,
                  "workers": options.workers, "t_ref_frame": t_ref, "searches": info}
    stages = list(clock)
    timings = {s: clock[s] - clock[p] for p, s in zip(stages, stages[1:], strict=False)}
    timings["total"] = _time.perf_counter() - clock["start"]
    return MoverResult(result_tracks, streaks, records, seq_times, parameters, timings, (ny, nx),
                       stack_image, names)


def _confirm(cube, t, used, t_ref, tracks, dv, fwhm, th, options, ny, nx, stars=None):
    """Score candidates along their whole trajectory, refine the promising ones, keep the confirmed."""
    if len(tracks) == 0:
        return tracks
    scored = score_tracks(cube, t - t_ref, used, tracks, th.clip)
    keep = scored["score"] >= 0.75 * th.score
    # Keep the refinement affordable: the best few thousand candidates.
    scored = scored[keep]
    scored = scored[np.argsort(scored["score"])[::-1][:3000]]
    scored = merge_duplicates(scored, fwhm, dv)
    refined = refine(cube, t - t_ref, used, scored, dv, th.clip)
    need = max(4, int(np.ceil(options.min_frames_fraction * used.sum())))
    # The signal must be spread along the track: a trajectory that crosses a mover or a star
    # residual in a few frames has a median near zero however high its sum.
    mean = refined["score"] / np.sqrt(np.maximum(refined["n"], 1))
    ok = ((refined["score"] >= th.score) & (refined["half1"] >= th.half) & (refined["half2"] >= th.half)
          & (refined["n"] >= need) & (refined["median"] >= th.evenness * mean))
    if stars is not None:
        ok &= _time_on_stars(refined, t - t_ref, used, stars) < options.max_star_fraction
    return merge_duplicates(refined[ok], fwhm, dv)


def bright_star_mask(model: np.ndarray, sigma_adu: float, fwhm: float, snr: float = 100.0) -> np.ndarray:
    """Pixels of the static sky within one FWHM of a star brighter than ``snr`` in a single frame.

    Seeing and jitter leave residuals there in every frame, with the same pattern on every
    star, which a slow trajectory can string together (JTransient's master-star veto).
    """
    from scipy import ndimage

    single, _ = matched_filter(model, sigma_adu, np.ones_like(model), gaussian_sigma(fwhm), 0, scale=1.0)
    return ndimage.binary_dilation(single > snr, iterations=int(np.ceil(fwhm)))


def _time_on_stars(tracks: np.ndarray, t_rel: np.ndarray, used: np.ndarray, stars: np.ndarray) -> np.ndarray:
    """Fraction of each trajectory's used frames spent on the bright-star mask."""
    ny, nx = stars.shape
    frames = np.flatnonzero(used)
    on = np.zeros(len(tracks))
    for k in frames:
        px = np.clip(np.rint(tracks["x"] + tracks["vx"] * t_rel[k]).astype(np.intp), 0, nx - 1)
        py = np.clip(np.rint(tracks["y"] + tracks["vy"] * t_rel[k]).astype(np.intp), 0, ny - 1)
        on += stars[py, px]
    return on / max(frames.size, 1)


def _shadow_fraction(track: Track, other: Track, radius: float) -> tuple[float, float]:
    """Fraction of ``track``'s frames, and of its summed SNR, within ``radius`` px of ``other``."""
    theirs = {p["frame"]: (p["x"], p["y"]) for p in other.positions}
    near = np.array([p["frame"] in theirs and np.hypot(p["x"] - theirs[p["frame"]][0],
                                                       p["y"] - theirs[p["frame"]][1]) <= radius
                     for p in track.positions], bool)
    signal = np.clip([p["snr"] for p in track.positions], 0, None)
    share = float(signal[near].sum() / signal.sum()) if signal.sum() > 0 else 0.0
    return float(near.mean()) if near.size else 0.0, share


# Trials of the velocity grid on a 24-frame 1k x 1k sequence (168 velocities x 512^2 coarse
# pixels), the search size the default thresholds were set on.
REFERENCE_TRIALS = 168 * 512 * 512


def _scaled_for_trials(th: TrackThresholds, velocities: int, coarse_pixels: float) -> TrackThresholds:
    """Raise the score threshold for searches larger than the reference one.

    The highest of n Gaussian noise scores grows as sqrt(2 ln n): a 100-frame 2k x 2k
    search tries ~80 times more trajectories and needs ~0.7 sigma more to keep the same
    false-track rate. Smaller searches keep the threshold as set.
    """
    trials = max(velocities, 1) * coarse_pixels
    extra = np.sqrt(2 * np.log(max(trials, 2.0))) - np.sqrt(2 * np.log(REFERENCE_TRIALS))
    if extra <= 0:
        return th
    return TrackThresholds(score=th.score + float(extra), half=th.half, clip=th.clip, evenness=th.evenness)


def _distinct(tracks: list[Track], fwhm: float, dv: float) -> list[Track]:
    """Best-first tracks without duplicates and shadows.

    A duplicate is the same mover reached from another seed; a shadow runs along a
    stronger track for a quarter of its frames or more (a trajectory joining pieces of two
    movers, or a mover's half-rate alias), or draws a third of its signal from the frames
    where it crosses one. Movers that cross share a frame or two, and little signal there.
    """
    tracks = sorted(tracks, key=lambda tr: -tr.snr)
    kept: list[Track] = []
    for tr in tracks:
        same = any(np.hypot(tr.x - k.x, tr.y - k.y) <= 2 * fwhm
                   and np.hypot(tr.vx - k.vx, tr.vy - k.vy) <= max(3 * dv, 0.1 * k.rate) for k in kept)
        shadow = any(frac >= 0.25 or share >= 0.35
                     for frac, share in (_shadow_fraction(tr, k, 2 * fwhm) for k in kept))
        if not (same or shadow):
            kept.append(tr)
    return kept


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _measure_fwhm(model: np.ndarray) -> float:
    from datas_pipeline.stacking.combine import measure_fwhm

    try:
        value = float(measure_fwhm(model))
    except Exception:  # noqa: BLE001 - any failure falls back to a typical seeing
        value = float("nan")
    return value if np.isfinite(value) and 1.0 <= value <= 20.0 else 3.0


def _reference_stars(model: np.ndarray, sigma: float, fwhm: float, border: int, count: int = 60) -> np.ndarray:
    """Bright, unsaturated-looking stars of the static sky: rows ``(x, y, window flux)``."""
    snr, _ = matched_filter(model, sigma, np.ones_like(model), gaussian_sigma(fwhm), border + 4, scale=1.0)
    peaks = local_peaks(snr, 20.0, size=int(4 * fwhm) | 1)
    if len(peaks) < 3:
        return np.zeros((0, 3))
    # Skip the very brightest (possibly saturated) fifth.
    peaks = peaks[len(peaks) // 5:][:count]
    cx, cy, flux = windowed_centroids(model[None], peaks[:, 0], peaks[:, 1], fwhm)
    good = flux[:, 0] > 0
    return np.column_stack([cx[good, 0], cy[good, 0], flux[good, 0]])


def _jitter(offsets: np.ndarray) -> float:
    """Registration jitter (px): rms of the per-frame star offsets from the static sky."""
    finite = offsets[np.all(np.isfinite(offsets), axis=1)]
    if len(finite) == 0:
        return 0.5
    return float(np.sqrt(np.mean(np.sum((finite - np.median(finite, axis=0)) ** 2, axis=1))))
