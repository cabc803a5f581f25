"""Auto-tune by injection and recovery on the user's own sequence.

JTransient's tuner scores how well stars and "transients" separate, a proxy; this one
measures what matters. Synthetic movers at a few rates and per-frame SNRs are added to a
central crop of the user's frames (same noise, stars, defects, jitter), the search runs
once at a permissive threshold, and for each candidate threshold the recall of the
injected movers and the number of other tracks (false, or real objects already in the
field) are counted. The lowest threshold whose false-track count stays within the budget
wins; the whole recall curve is reported.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from datas_pipeline.movers.evaluate import match_tracks
from datas_pipeline.movers.search import MoverOptions, find_movers
from datas_pipeline.movers.sequence import FrameSet, MoverError, sequence_times
from datas_pipeline.movers.synthetic import injected, random_movers
from datas_pipeline.movers.tracking import TrackThresholds
from datas_pipeline.robust import robust_sigma


@dataclass
class TuneResult:
    """The chosen thresholds and the measured curve.

    ``curve`` rows: ``{"score": threshold, "recall": overall, "recall_by_snr": {snr: r},
    "recall_by_rate": {rate: r}, "false_tracks": n}`` (false tracks per crop, injected run).
    """

    thresholds: TrackThresholds
    curve: list[dict] = field(default_factory=list)
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    injected: int = 0

    def as_dict(self) -> dict:
        return {"score": self.thresholds.score, "half": self.thresholds.half, "crop": list(self.crop),
                "injected": self.injected, "curve": self.curve}


def _crop(frames: Sequence, size: int) -> tuple[list[np.ndarray], tuple[int, int, int, int], list]:
    fs = FrameSet(list(frames))
    try:
        ny, nx = fs.shape
        h, w = min(size, ny), min(size, nx)
        r0, c0 = (ny - h) // 2, (nx - w) // 2
        crops = [np.nan_to_num(fs.rows(i, r0, r0 + h)[:, c0:c0 + w]) for i in range(len(fs))]
        return crops, (r0, c0, h, w), fs.headers
    finally:
        fs.close()


def autotune(frames: Sequence[np.ndarray | str | Path], times: Sequence[float] | None = None,
             headers: Sequence | None = None, options: MoverOptions | None = None,
             rates: Sequence[float] = (0.3, 1.0, 3.0, 8.0), snrs: Sequence[float] = (2.5, 3.0, 4.0, 6.0),
             per_cell: int = 1, crop: int = 512, scores: Sequence[float] = (6.0, 6.5, 7.0, 7.5, 8.0, 9.0),
             recall_target: float = 0.9, max_false: float = 0.5, fwhm_px: float | None = None,
             seed: int = 0) -> TuneResult:
    """Choose the track score threshold from injected movers in a crop of the user's frames.

    Parameters
    ----------
    frames, times, headers
        As for :func:`~datas_pipeline.movers.search.find_movers`.
    rates, snrs
        Injected rates (px/frame) and per-frame SNRs; ``per_cell`` movers of each pair.
    crop : int
        Side (px) of the central crop searched.
    scores : sequence of float
        Candidate score thresholds (SNR units); halves scale with them.
    recall_target, max_false
        The lowest threshold with at most ``max_false`` extra tracks per crop is chosen; if
        none reaches ``recall_target`` at SNR >= 3 the note in the curve says so.
    """
    options = options or MoverOptions()
    crops, box, file_headers = _crop(frames, crop)
    if len(crops) < 5:
        raise MoverError("auto-tune needs at least 5 frames")
    heads = list(headers) if headers is not None else file_headers
    if times is not None:
        t = np.asarray(times, float)
        t = (t - t[0]) / np.median(np.diff(np.sort(t)))
    else:
        t = sequence_times(heads, len(crops)).frame_units
    sigma = float(np.median([robust_sigma(c) for c in crops]))
    if fwhm_px is None:
        from datas_pipeline.movers.search import _measure_fwhm

        fwhm_px = _measure_fwhm(np.median(crops, axis=0))
    rng = np.random.default_rng(seed)
    pairs = [(r, s) for r in rates for s in snrs for _ in range(per_cell)]
    truth = random_movers(len(pairs), crops[0].shape, int(np.ceil(t.max())) + 1, rng,
                          rates=[p[0] for p in pairs], snrs=[p[1] for p in pairs])
    lowest = min(scores)
    base = TrackThresholds(score=lowest, half=options.thresholds.half * lowest / options.thresholds.score,
                           clip=options.thresholds.clip, evenness=options.thresholds.evenness)
    run = replace(options, thresholds=base, fwhm_px=fwhm_px)
    seconds = t if times is None else np.asarray(times, float)
    result = find_movers(injected(crops, truth, fwhm_px, sigma, t=t), times=seconds if times is not None else None,
                         headers=heads if times is None else None, options=run)
    curve = []
    for score in sorted(scores):
        half = options.thresholds.half * score / options.thresholds.score
        kept = [tr for tr in result.tracks if tr.snr >= score and min(tr.half_snr) >= half or
                (tr.source in ("link", "slow") and tr.snr >= score)]
        match = match_tracks(kept, truth, result.parameters["t_ref_frame"], float(np.ptp(t)))
        found = match.found >= 0
        curve.append({
            "score": score, "recall": float(found.mean()),
            "recall_by_snr": {f"{s:g}": float(found[truth["snr"] == s].mean()) for s in snrs},
            "recall_by_rate": {f"{r:g}": float(found[np.isclose(np.hypot(truth["vx"], truth["vy"]), r)].mean())
                               for r in rates},
            "false_tracks": int(match.false_tracks)})
    acceptable = [row for row in curve if row["false_tracks"] <= max_false]
    chosen = acceptable[0] if acceptable else curve[-1]
    faint = [s for s in snrs if s >= 3.0]
    for row in curve:
        reach = np.mean([row["recall_by_snr"][f"{s:g}"] for s in faint]) if faint else row["recall"]
        row["meets_recall_target"] = bool(reach >= recall_target)
    thresholds = TrackThresholds(score=chosen["score"], half=options.thresholds.half * chosen["score"]
                                 / options.thresholds.score, clip=options.thresholds.clip,
                                 evenness=options.thresholds.evenness)
    return TuneResult(thresholds, curve, box, len(truth))
