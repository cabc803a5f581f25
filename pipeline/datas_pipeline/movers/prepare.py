"""Raw (unaligned) frames made ready for the mover search: defects out in detector coordinates,
then registration with the project's registration and warping onto one reference.

Hot pixels and hot columns sit still on the detector. Once dithered frames are aligned on
the sky they move, opposite to the dither, and a drifting mount makes them move at a
constant rate: exactly what a mover looks like (SpacePixels' weak spot). So they are found
and repaired *before* registration: a pixel that is sharper than any star in several raw
frames, or a column that stands out of its neighbours in the mean of the frames, is a
defect (plus any bad-pixel map the user has, e.g. from
:func:`datas_pipeline.calibration.defects.bad_pixel_map`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from datas_pipeline.calibration.defects import clean_pixels
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import write_frame
from datas_pipeline.io.headers import header_celestial_wcs
from datas_pipeline.movers.sequence import sharp_pixels
from datas_pipeline.robust import median_sigma, robust_sigma
from datas_pipeline.stacking.combine import FrameSet


def detector_defects(frames: FrameSet, min_fraction: float = 0.25, column_sigma: float = 5.0) -> np.ndarray:
    """Defect mask in detector coordinates: recurring sharp pixels and outstanding columns.

    A pixel sharp (see :func:`~datas_pipeline.movers.sequence.sharp_pixels`, its neighbours
    included) in ``min_fraction`` of the frames, or a column whose median stands
    ``column_sigma`` out of its neighbours' in three quarters of the frames.
    """
    ny, nx = frames.shape
    counts = np.zeros((ny, nx), np.int32)
    column_hits = np.zeros(nx, np.int32)
    for i in range(len(frames)):
        data = np.nan_to_num(frames.rows(i, 0, ny))
        level, sigma = median_sigma(frames.sample(i))
        counts += sharp_pixels(data - np.float32(level), sigma)
        profile = np.median(data, axis=0)
        excess = profile - ndimage.median_filter(profile, 15, mode="nearest")
        column_hits += np.abs(excess) > column_sigma * (robust_sigma(excess) or 1e-6)
    # A cosmic ray rarely hits the same pixel twice, and a star drifts across columns;
    # a hot pixel or column is there in (nearly) every frame.
    mask = counts >= max(2, int(np.ceil(min_fraction * len(frames))))
    mask[:, column_hits >= 0.75 * len(frames)] = True
    return mask


def _celestial_header(header):
    """The celestial WCS cards of a header (SIP included), or None."""
    wcs = header_celestial_wcs(header)
    return wcs.to_header(relax=True) if wcs is not None else None


def register_raw(sources: Sequence[np.ndarray | str | Path], out_dir: str | Path,
                 bad_pixels: np.ndarray | None = None, kind: str = "similarity", reference: int | None = None,
                 headers: Sequence | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> tuple[list[Path], list[dict], np.ndarray]:
    """Repair detector defects, register every frame on one reference, write the aligned frames.

    Returns the aligned FITS paths (refused frames left out), one record per input frame
    (accepted, reason, shift, rotation, rms) and the defect mask used. The aligned frames
    keep their own headers (times) with the reference's WCS, since they now share its grid.
    """
    from datas_pipeline.registration.register import prepare_reference, register_image
    from datas_pipeline.registration.warp import warp_image

    frames = FrameSet(list(sources))
    try:
        mask = detector_defects(frames)
        if bad_pixels is not None:
            if bad_pixels.shape != frames.shape:
                raise PipelineError(f"bad-pixel map {bad_pixels.shape} does not match the frames {frames.shape}")
            mask |= bad_pixels
        ny = frames.shape[0]
        ref_index = len(frames) // 2 if reference is None else int(reference)
        ref_data = clean_pixels(frames.rows(ref_index, 0, ny), mask)
        ref = prepare_reference(ref_data)
        wcs_header = _celestial_header(frames.headers[ref_index])
        out_dir = Path(out_dir)
        paths, records = [], []
        for i in range(len(frames)):
            data = clean_pixels(frames.rows(i, 0, ny), mask)
            record = {"file": frames.names[i], "defects_repaired": int(mask.sum())}
            result = register_image(ref, data, kind=kind)
            q = result.quality
            record.update(accepted=bool(result.accepted), reason=result.reason, dx=float(q.dx), dy=float(q.dy),
                          rotation_deg=float(q.rotation_deg), rms_px=float(q.rms_px))
            records.append(record)
            if result.accepted:
                warped = warp_image(data, result.transform, frames.shape, kernel="lanczos3")
                header = (headers[i] if headers is not None else frames.headers[i]).copy()
                if wcs_header is not None:
                    header.update(wcs_header)
                paths.append(write_frame(out_dir / f"aligned_{i:04d}_{Path(frames.names[i]).stem}.fits",
                                         warped.data, header, overwrite=True))
            if progress:
                progress("register", i + 1, len(frames))
        return paths, records, mask
    finally:
        frames.close()
