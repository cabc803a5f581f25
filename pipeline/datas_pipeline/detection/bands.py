"""Large frames extracted in overlapping row bands, on one process or several, with one result.

sep holds the GIL, so threads cannot share its work; processes can, if they need not each
receive a copy of a 64 MB frame. The background and its noise are computed once for the
whole frame (a band's own mesh would differ); with a worker pool the residual is written
straight into shared memory, and each worker maps it.

**Detection in bands.** A frame taller than ``BAND_ROWS`` (plus the margin) is cut into equal
row bands of at most ``BAND_ROWS``; sep detects each band with ``BAND_MARGIN`` rows of overlap
on either side (more than the filter's half-size plus the largest object), keeps the objects
whose barycentre lies in the band's own rows and writes those rows of the segmentation map.
An object that touches a band's cut edge and reaches into its own rows is larger than the
margin: the whole frame is then detected in one piece.

The layout depends on the frame's height only, and the serial path detects the same bands
in turn, so the catalogue is bit for bit the same with any number of workers. That is the
reason for fixing it: sep's deblender shares the faint pixels of a blend among its children
by random draws from a generator restarted with each call (SExtractor's ``gatherup``), so a
deblended object's pixel count, isophotal flux and moments depend on how many blends the
same call met before it. Measured on a crowded 4096² field, splitting it into two bands left
every object that was not deblended unchanged, and gave the ~5 % that were deblended another,
equally valid draw of those columns (barycentres and peaks unchanged; 3 of 16,800 blends
split differently) — the same change as adding one row at the top of the frame.

**Measurements in parts.** Kron radius and flux, half-light radius and windowed centroid
are computations per object on the whole frame, so splitting the object list over the
workers changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

# Rows of overlap on either side of a band: the largest object plus the filter's half-size
# (objects larger than this send the frame back to serial detection).
BAND_MARGIN = 192
# Most rows in a detection band: a taller frame is cut into equal bands of at most this many.
BAND_ROWS = 2048
# sep's row coordinates, shifted by a band's first row.
_ROW_FIELDS = ("y", "ymin", "ymax", "ycpeak", "ypeak")


@dataclass(frozen=True)
class SharedArray:
    """Where a worker finds an array: shared-memory block name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def attach(self) -> tuple[shared_memory.SharedMemory, np.ndarray]:
        block = shared_memory.SharedMemory(name=self.name)
        return block, np.ndarray(self.shape, dtype=self.dtype, buffer=block.buf)


def shared_empty(stack: ExitStack, shape: tuple[int, ...], dtype) -> tuple[SharedArray, np.ndarray]:
    """A new shared array (uninitialised) that lives as long as ``stack``, and a view of it.
    Drop the view before ``stack`` ends."""
    dtype = np.dtype(dtype)
    block = shared_memory.SharedMemory(create=True, size=max(int(np.prod(shape)) * dtype.itemsize, 1))
    stack.callback(block.unlink)
    stack.callback(block.close)
    return SharedArray(block.name, tuple(shape), dtype.str), np.ndarray(shape, dtype=dtype, buffer=block.buf)


def share(stack: ExitStack, array: np.ndarray | float | None) -> SharedArray | float | None:
    """``array`` copied into a shared block that lives as long as ``stack``; a scalar (or None)
    is passed as it is."""
    if array is None or np.ndim(array) == 0:
        return None if array is None else float(array)
    ref, view = shared_empty(stack, np.shape(array), np.asarray(array).dtype)
    view[...] = array
    del view
    return ref


def _attach(stack: ExitStack, ref):
    """A view of a shared array (or the scalar itself); the block is closed when ``stack`` ends."""
    if not isinstance(ref, SharedArray):
        return ref
    block, view = ref.attach()
    stack.callback(block.close)
    return view


@dataclass(frozen=True)
class SharedFrame:
    """The residual image, its noise (a map or one value) and mask, as workers find them
    (shared arrays), or as they are in this process (arrays)."""

    residual: SharedArray | np.ndarray
    err: SharedArray | np.ndarray | float
    mask: SharedArray | np.ndarray | None


@dataclass(frozen=True)
class _Band:
    """What one band found: its own objects and their labels in the segmentation map, the
    objects of other bands whose pixels lie in its rows, and whether it met a too large one."""

    objects: np.ndarray
    ids: np.ndarray
    foreign: np.ndarray
    foreign_ids: np.ndarray
    too_large: bool


def _detect_band(task: tuple) -> _Band:
    """sep's detection on rows ``lo:hi`` of the shared frame (runs in a worker), keeping the
    objects whose barycentre lies in rows ``r0:r1``, whose labels it writes to the shared
    segmentation map (offset by ``label_offset``)."""
    from datas_pipeline.detection.extract import detect_objects

    frame, segmap_ref, r0, r1, lo, hi, label_offset, options = task
    with ExitStack() as stack:
        residual, err, mask = (_attach(stack, ref) for ref in (frame.residual, frame.err, frame.mask))
        objects, labels = detect_objects(residual[lo:hi], err[lo:hi] if np.ndim(err) else err,
                                         None if mask is None else mask[lo:hi], options)
        for name in _ROW_FIELDS:
            objects[name] += lo
        core = labels[r0 - lo:r1 - lo]
        segmap = _attach(stack, segmap_ref)
        segmap[r0:r1] = np.where(core > 0, core + label_offset, 0)
        present = np.zeros(len(objects) + 1, dtype=bool)
        present[core.ravel()] = True
        del residual, err, mask, labels, core, segmap
    # An object cut by the band's edge reaches the band's own rows only if it is larger than
    # the margin: then this band's result cannot be trusted.
    cut_above = (objects["ymin"] <= lo) & (lo > 0)
    cut_below = (objects["ymax"] >= hi - 1) & (hi < segmap_ref.shape[0])
    too_large = bool(np.any((cut_above & (objects["ymax"] >= r0)) | (cut_below & (objects["ymin"] < r1))))
    row = np.floor(objects["y"] + 0.5)
    own = (row >= r0) & (row < r1)
    labels = np.arange(1, len(objects) + 1) + label_offset
    foreign = ~own & present[1:]
    return _Band(objects[own], labels[own], objects[foreign], labels[foreign], too_large)


def band_edges(rows: int) -> np.ndarray | None:
    """Row edges of the detection bands of a frame of ``rows`` rows (None: one band, the
    whole frame). The layout depends on the frame only, never on the number of workers."""
    count = int(np.ceil(rows / BAND_ROWS))
    if count < 2 or rows <= BAND_ROWS + BAND_MARGIN:
        return None
    return np.linspace(0, rows, count + 1).astype(int)


def detect_frame(run: Callable, frame: SharedFrame, residual: np.ndarray, err, mask: np.ndarray | None,
                 options: dict, segmap: tuple[SharedArray | np.ndarray, np.ndarray] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objects, segmentation map and the objects' labels in it, detected band by band.

    ``residual``, ``err`` and ``mask`` are the frame's arrays here; ``frame`` is how
    :func:`_detect_band` finds them: the same arrays when ``run`` is ``map`` (serially), or
    shared arrays for a pool's ``map``, with a shared ``segmap`` (reference, view). Frames of
    one band, and frames holding an object larger than the bands' overlap, are detected whole
    in this process.
    """
    from datas_pipeline.detection.extract import detect_objects

    rows = residual.shape[0]
    edges = band_edges(rows)
    if edges is not None:
        if segmap is None:
            labels = np.zeros(residual.shape, dtype=np.int32)
            segmap = (labels, labels)
        tasks = [(frame, segmap[0], int(r0), int(r1), max(0, int(r0) - BAND_MARGIN), min(rows, int(r1) + BAND_MARGIN),
                  k << 24, options) for k, (r0, r1) in enumerate(zip(edges[:-1], edges[1:], strict=True))]
        bands = list(run(_detect_band, tasks))
        if not any(band.too_large for band in bands):
            objects = np.concatenate([band.objects for band in bands])
            ids = np.concatenate([band.ids for band in bands])
            _relabel_spills(segmap[1], tasks, bands, objects, ids)
            return objects, segmap[1], ids
    objects, labels = detect_objects(residual, err, mask, options)
    return objects, labels, np.arange(1, len(objects) + 1)


def _relabel_spills(segmap: np.ndarray, tasks: list[tuple], bands: list[_Band], objects: np.ndarray,
                    ids: np.ndarray) -> None:
    """An object kept by one band may spill into the next band's rows, which that band labelled
    with its own label: relabel those pixels with the keeping band's id (the same object has
    the same barycentre in both bands; one that the two deblended differently keeps a label of
    its own, which is all the profile fits ask: another object's pixel)."""
    order = np.lexsort((objects["x"], objects["y"]))
    keys_y, keys_x = objects["y"][order], objects["x"][order]
    for (_, _, r0, r1, *_), band in zip(tasks, bands, strict=True):
        for obj, label in zip(band.foreign, band.foreign_ids, strict=True):
            j = int(np.searchsorted(keys_y, obj["y"] - 1e-6))
            while j < len(keys_y) and keys_y[j] <= obj["y"] + 1e-6:
                if abs(keys_x[j] - obj["x"]) <= 1e-6:
                    box = segmap[max(r0, int(obj["ymin"])):min(r1, int(obj["ymax"]) + 1),
                                 int(obj["xmin"]):int(obj["xmax"]) + 1]
                    box[box == label] = ids[order[j]]
                    break
                j += 1


def _shape_chunk(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Kron, half-light and windowed measures of a slice of objects (runs in a worker)."""
    from datas_pipeline.detection.extract import SOURCE_COLUMNS, _shape_measures

    objects, frame, gain, kron_params = task
    table = np.zeros(len(objects), dtype=[(name, "f8") for name in SOURCE_COLUMNS])
    with ExitStack() as stack:
        residual, err, mask = (_attach(stack, ref) for ref in (frame.residual, frame.err, frame.mask))
        flags = _shape_measures(table, residual, objects, err, gain, mask, kron_params)
        del residual, err, mask
    return table, flags


def measure_in_parts(executor: Executor, jobs: int, table: np.ndarray, frame: SharedFrame, objects: np.ndarray,
                     gain: float | None, kron_params: tuple[float, float]) -> np.ndarray:
    """:func:`~datas_pipeline.detection.extract._shape_measures` over ``jobs`` parts of the
    object list on ``executor``; fills ``table`` and returns the flags, as the serial call does."""
    columns = ("kron_radius", "flux_auto", "flux_auto_err", "half_light_radius", "x_win", "y_win")
    parts = np.array_split(np.arange(len(objects)), jobs)
    tasks = [(objects[part], frame, gain, kron_params) for part in parts]
    flags = np.zeros(len(objects), dtype=np.int64)
    for part, (chunk, chunk_flags) in zip(parts, executor.map(_shape_chunk, tasks), strict=True):
        for name in columns:
            table[name][part] = chunk[name]
        flags[part] = chunk_flags
    return flags
