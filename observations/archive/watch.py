"""Following a share as frames arrive (inotify through watchdog), with a quiet period.

A capture program writes a frame over seconds; a file is catalogued only once no event
has touched it for ``quiet_s`` seconds and its size stopped changing, so a half-written
file is never read.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from datas_pipeline.archive.scan import is_share_fits
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer


class QuietFiles(FileSystemEventHandler):
    """Collects FITS paths touched by events and hands out those quiet for ``quiet_s`` seconds."""

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self._touched: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        path = getattr(event, "dest_path", "") or event.src_path
        if isinstance(path, bytes):
            path = path.decode()
        if is_share_fits(path):
            self.touch(path)

    def touch(self, path: str, now: float | None = None) -> None:
        with self._lock:
            self._touched[path] = (now if now is not None else time.monotonic(), _size(path))

    def ready(self, now: float | None = None) -> list[Path]:
        """Paths quiet for ``quiet_s`` with an unchanged size; the others wait on."""
        now = now if now is not None else time.monotonic()
        out = []
        with self._lock:
            for path, (when, size) in list(self._touched.items()):
                if now - when < self.quiet_s:
                    continue
                current = _size(path)
                if current != size:  # still growing without events (NFS, SMB): wait again
                    self._touched[path] = (now, current)
                    continue
                del self._touched[path]
                if current >= 0:
                    out.append(Path(path))
        return sorted(out)


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def watch_share(roots: Iterable[Path], on_ready: Callable[[list[Path]], None], *, quiet_s: float = 10.0,
                poll_s: float = 1.0, stop: threading.Event | None = None) -> None:
    """Call ``on_ready(paths)`` with files that arrived under ``roots`` once each is quiet.

    Runs until ``stop`` is set (or forever, until interrupted).
    """
    handler = QuietFiles(quiet_s)
    observer = Observer()
    for root in roots:
        observer.schedule(handler, str(root), recursive=True)
    observer.start()
    stop = stop or threading.Event()
    try:
        while not stop.wait(poll_s):
            paths = handler.ready()
            if paths:
                on_ready(paths)
    finally:
        observer.stop()
        observer.join(timeout=5)
