"""One large frame measured on several processes: the object list in parts, the pixels
shared (not copied) through shared memory.

sep holds the GIL, so threads cannot share its work; processes can, if they need not each
receive a copy of a 64 MB frame. The residual image (and noise map and mask) are put once in
shared memory, and each worker maps them. Kron radius and flux, half-light radius and
windowed centroid are computations per object on the whole frame, so splitting the object
list changes nothing: the result is bit for bit the serial one.

Detection itself stays serial. Detecting in overlapping row bands was tried and measured:
positions and aperture fluxes came out identical, but for about 4 % of the objects of the
second band (deblended, faint) sep's isophotal flux, pixel count and moments differed from
the whole-frame scan even 800 rows from any cut, with CLEAN off and the band given the
whole frame's coordinates (rows above it masked): sep's deblending depends on the scan's
history. A catalogue that depends on the number of workers is not acceptable.
"""
from __future__ import annotations

from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np


@dataclass(frozen=True)
class SharedArray:
    """Where a worker finds an array: shared-memory block name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def attach(self) -> tuple[shared_memory.SharedMemory, np.ndarray]:
        block = shared_memory.SharedMemory(name=self.name)
        return block, np.ndarray(self.shape, dtype=self.dtype, buffer=block.buf)


def share(stack: ExitStack, array: np.ndarray | None, copy: bool = True) -> SharedArray | None:
    """Put ``array`` in a shared block that lives as long as ``stack``."""
    if array is None or np.ndim(array) == 0:
        return None
    block = shared_memory.SharedMemory(create=True, size=max(array.nbytes, 1))
    stack.callback(block.unlink)
    stack.callback(block.close)
    view = np.ndarray(array.shape, dtype=array.dtype, buffer=block.buf)
    if copy:
        view[...] = array
    else:
        view.fill(0)
    return SharedArray(block.name, tuple(array.shape), array.dtype.str)


def _attach(stack: ExitStack, ref: SharedArray) -> np.ndarray:
    """A view of a shared array; the block is closed when ``stack`` ends (drop the view first)."""
    block, view = ref.attach()
    stack.callback(block.close)
    return view


def _shape_chunk(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Kron, half-light and windowed measures of a slice of objects (runs in a worker)."""
    from datas_pipeline.detection.extract import SOURCE_COLUMNS, _shape_measures

    objects, residual_ref, err, mask_ref, gain, kron_params = task
    table = np.zeros(len(objects), dtype=[(name, "f8") for name in SOURCE_COLUMNS])
    with ExitStack() as stack:
        residual = _attach(stack, residual_ref)
        if isinstance(err, SharedArray):
            err = _attach(stack, err)
        mask = _attach(stack, mask_ref) if mask_ref is not None else None
        flags = _shape_measures(table, residual, objects, err, gain, mask, kron_params)
        del residual, err, mask
    return table, flags


def measure_in_parts(
    executor: Executor, jobs: int, table: np.ndarray, residual: np.ndarray, objects: np.ndarray, err,
    gain: float | None, mask: np.ndarray | None, kron_params: tuple[float, float],
) -> np.ndarray:
    """:func:`~datas_pipeline.detection.extract._shape_measures` over ``jobs`` parts of the
    object list on ``executor``; fills ``table`` and returns the flags, as the serial call does."""
    columns = ("kron_radius", "flux_auto", "flux_auto_err", "half_light_radius", "x_win", "y_win")
    with ExitStack() as stack:
        residual_ref = share(stack, residual)
        err_ref = share(stack, np.asarray(err)) if np.ndim(err) else float(err)
        mask_ref = share(stack, mask)
        parts = np.array_split(np.arange(len(objects)), jobs)
        tasks = [(objects[part], residual_ref, err_ref, mask_ref, gain, kron_params) for part in parts]
        results = list(executor.map(_shape_chunk, tasks))
    flags = np.zeros(len(objects), dtype=np.int64)
    for part, (chunk, chunk_flags) in zip(parts, results, strict=True):
        for name in columns:
            table[name][part] = chunk[name]
        flags[part] = chunk_flags
    return flags
