"""Parallelism owned by the caller: a process pool over frames, or over row bands of one frame.

The science functions stay serial and pure; a batch command (or a task) decides how many
workers to use and maps a top-level function over its frames with :func:`map_in_order`.
Measured on this project's kernels: sep (extraction, background, apertures) holds the GIL
throughout, so threads gain nothing there; scipy.ndimage and numpy's large ufuncs release
it, astropy.io.fits reads are too short to matter. Hence processes.

Processes start from a **forkserver** (a clean single-threaded server that imports the
science modules once and forks workers from itself): a worker is never forked from a process
that runs threads (the caller may be a Celery worker or have a BLAS pool), and starts in tens
of milliseconds instead of the seconds a fresh interpreter takes to import astropy. Each
worker's BLAS/OpenMP pools are limited to one thread so N workers use N cores.

The number of workers is the caller's ``jobs``; by default the ``DATAS_WORKERS`` setting
(environment), else the cores this process may run on.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from datas_pipeline.errors import PipelineError

WORKERS_SETTING = "DATAS_WORKERS"
# Imported once by the fork server, so forked workers start with them loaded.
PRELOAD = ("numpy", "sep", "astropy.io.fits", "datas_pipeline.detection.extract",
           "datas_pipeline.calibration.masters", "datas_pipeline.registration.register",
           "datas_pipeline.registration.warp", "datas_pipeline.detection.grading")
_THREAD_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """Workers to use when the caller does not say: ``DATAS_WORKERS``, else the available cores."""
    text = os.environ.get(WORKERS_SETTING, "").strip()
    if not text:
        return available_cores()
    try:
        jobs = int(text)
    except ValueError:
        raise PipelineError(f"{WORKERS_SETTING}={text!r} is not a whole number") from None
    if jobs < 1:
        raise PipelineError(f"{WORKERS_SETTING} must be at least 1, not {jobs}")
    return jobs


# Starting the pool (the fork server imports astropy, sep and the science once) was measured
# at 0.5-4 s on a busy 2-core machine: only batches of at least this many bytes of frames
# gain from it, unless the caller or DATAS_WORKERS asks for workers explicitly.
PARALLEL_MIN_BYTES = 256 * 2**20


def jobs_for_files(paths: Iterable, jobs: int | None) -> int:
    """Workers for a batch of files: ``jobs`` if given, ``DATAS_WORKERS`` if set, else the
    cores for batches of at least ``PARALLEL_MIN_BYTES`` on disk and one (serial) below."""
    if jobs is not None or os.environ.get(WORKERS_SETTING, "").strip():
        return resolve_jobs(jobs)
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            continue  # the batch reports the unreadable file itself
    return available_cores() if total >= PARALLEL_MIN_BYTES else 1


def resolve_jobs(jobs: int | None) -> int:
    """``jobs`` if given (at least 1), else :func:`default_jobs`."""
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise PipelineError(f"jobs must be at least 1, not {jobs}")
    return int(jobs)


def _limit_threads() -> None:
    for name in _THREAD_LIMITS:
        os.environ.setdefault(name, "1")


def _start_worker(initializer: Callable | None, initargs: tuple) -> None:
    _limit_threads()
    if initializer is not None:
        initializer(*initargs)


def process_pool(jobs: int, initializer: Callable | None = None, initargs: tuple = ()) -> Executor:
    """A pool of ``jobs`` worker processes forked from a clean fork server.

    ``initializer(*initargs)`` runs once in each worker: the way to hand every task the same
    large inputs (masters, a reference) without pickling them with each task.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                               initargs=(initializer, initargs))


@contextmanager
def worker_context(initializer: Callable, initargs: tuple, jobs: int | None) -> Iterator[Executor | None]:
    """A pool whose workers ran ``initializer(*initargs)``; serially (one job), it runs here
    and None is yielded, which :func:`map_in_order` with the same ``jobs`` runs in-process."""
    jobs = resolve_jobs(jobs)
    if jobs <= 1:
        initializer(*initargs)
        yield None
        return
    pool = process_pool(jobs, initializer, initargs)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def map_in_order(
    function: Callable[[T], R], items: Iterable[T], jobs: int | None = None, executor: Executor | None = None,
) -> Iterator[R]:
    """``function`` over ``items``, results in input order, on ``jobs`` processes.

    ``function`` must be a module-level function and items picklable. With one job (or one
    item) it runs here, in this process, exactly as serial code does. Results are yielded as
    soon as the next one in order is ready, so a progress bar can follow. An exception in a
    worker is raised here, as it would be serially. ``executor`` reuses a pool the caller owns.
    """
    items = list(items)
    jobs = resolve_jobs(jobs)
    if executor is None and (jobs <= 1 or len(items) <= 1):
        for item in items:
            yield function(item)
        return
    own = executor is None
    pool = executor or process_pool(min(jobs, len(items)))
    try:
        futures = [pool.submit(function, item) for item in items]
        for future in futures:
            yield future.result()
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class WorkerPool:
    """A caller's pool of ``jobs`` worker processes, for functions that split one frame's work."""

    executor: Executor
    jobs: int


@contextmanager
def worker_pool(jobs: int | None) -> Iterator[WorkerPool | None]:
    """A :class:`WorkerPool` of ``jobs`` processes, or None for one job (run serially)."""
    jobs = resolve_jobs(jobs)
    if jobs <= 1:
        yield None
        return
    pool = process_pool(jobs)
    try:
        yield WorkerPool(pool, jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
