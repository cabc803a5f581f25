"""Live view: frames of a target join a registered running mean, and a stretched preview follows.

One :class:`datas_pipeline.stacking.live.LiveStacker` per (OBJECT, FILTER), so a night of several
targets and filters gives one live stack each; a preview PNG (and optionally the stack as
FITS) is written after every ``preview_every`` accepted frames of a stack, and once more when
the stack is closed. Used three ways:

- ``datas-agent livestack DIR`` stacks the FITS files in a folder once (``--once``) or as they
  arrive (watch mode, until ``--idle-timeout``);
- the running agent, when ``livestack.enabled`` is set, stacks each frame it has just written
  and queued (:class:`AgentLiveView`, which never lets a failure reach the observing loop).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the science is imported when a stack starts, not when the CLI is built
    from datas_pipeline.stacking.live import LiveFrameReport, LiveStacker

log = logging.getLogger(__name__)

FITS_PATTERNS = ("*.fits", "*.fit", "*.fts")
EXIT_NOTHING_STACKED = 1
EXIT_USAGE = 2


@dataclass
class LiveViewReport:
    """One frame's fate in the live view: its stack, the stacker's report, the preview written."""

    target: str
    filter: str
    frame: LiveFrameReport
    preview: Path | None = None

    def as_dict(self) -> dict:
        """JSON-serialisable record (the stacker's fields plus target, filter and preview)."""
        return {"target": self.target, "filter": self.filter, **self.frame.as_dict(),
                "preview": str(self.preview) if self.preview else None}


def safe_name(text: str) -> str:
    """A file-name-safe version of a target or filter name."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text.strip()).strip("_") or "unnamed"


class _Stack:
    def __init__(self, stacker: LiveStacker) -> None:
        self.stacker = stacker
        self.previewed_at = 0  # frames_stacked when the last preview was written


class TargetLiveStacks:
    """Live stacks keyed by (target, filter), each previewed after every ``preview_every`` frames.

    Parameters
    ----------
    out_dir : Path
        Where previews (``<target>_<filter>.png``) and stacks (``.fits``) go.
    preview_every : int
        Accepted frames between two previews of one stack (>= 1).
    max_stacks : int
        Stacks kept in memory at once; the least recently fed is closed (its last preview
        written) to make room. A 1k x 1k stack holds about 20 MB (40 MB while its first
        five frames are kept for outlier rejection).
    save_fits : bool
        Also write the stack as FITS with every preview.
    max_size : int
        Longest side of the preview (px).
    stacker_options : dict
        Passed to :class:`LiveStacker` (e.g. ``pixel_rejection_sigma``).
    """

    def __init__(self, out_dir: str | Path, preview_every: int = 5, max_stacks: int = 4, save_fits: bool = False,
                 max_size: int = 1024, stacker_options: dict | None = None) -> None:
        if preview_every < 1:
            raise ValueError(f"preview_every must be at least 1, got {preview_every}")
        if max_stacks < 1:
            raise ValueError(f"max_stacks must be at least 1, got {max_stacks}")
        self.out_dir = Path(out_dir)
        self.preview_every = preview_every
        self.max_stacks = max_stacks
        self.save_fits = save_fits
        self.max_size = max_size
        self.stacker_options = stacker_options or {}
        self.stacks: OrderedDict[tuple[str, str], _Stack] = OrderedDict()
        self.started: set[tuple[str, str]] = set()  # stacks that ever had a reference frame

    def paths(self, target: str, filter_name: str) -> tuple[Path, Path]:
        """The preview PNG and stack FITS of one (target, filter)."""
        stem = f"{safe_name(target)}_{safe_name(filter_name)}" if filter_name else safe_name(target)
        return self.out_dir / f"{stem}.png", self.out_dir / f"{stem}.fits"

    def add(self, frame: str | Path, target: str, filter_name: str = "") -> LiveViewReport:
        """Stack one FITS frame of ``target`` in ``filter_name``; write a preview when one is due."""
        key = (target, filter_name)
        stack = self.stacks.get(key)
        if stack is None:
            from datas_pipeline.stacking.live import LiveStacker

            stack = self.stacks[key] = _Stack(LiveStacker(**self.stacker_options))
            while len(self.stacks) > self.max_stacks:
                self._close(*self.stacks.popitem(last=False))
        self.stacks.move_to_end(key)
        report = LiveViewReport(target, filter_name, stack.stacker.add(frame))
        if report.frame.accepted:
            self.started.add(key)
            if stack.stacker.frames_stacked - stack.previewed_at >= self.preview_every:
                report.preview = self._write(key, stack)
        return report

    def close(self) -> list[Path]:
        """Write the last preview of every stack that gained frames since its previous one."""
        written = [self._close(key, stack) for key, stack in list(self.stacks.items())]
        self.stacks.clear()
        return [path for path in written if path is not None]

    def _close(self, key: tuple[str, str], stack: _Stack) -> Path | None:
        if stack.stacker.frames_stacked > stack.previewed_at:
            return self._write(key, stack)
        return None

    def _write(self, key: tuple[str, str], stack: _Stack) -> Path:
        preview, stack_fits = self.paths(*key)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stack.stacker.preview(preview, max_size=self.max_size)
        if self.save_fits:
            stack.stacker.save(stack_fits)
        stack.previewed_at = stack.stacker.frames_stacked
        return preview


def frame_key(path: Path, default_target: str = "") -> tuple[str, str]:
    """(OBJECT, FILTER) from a FITS header; an unreadable header gives ``default_target`` and no filter."""
    from astropy.io import fits

    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return default_target or path.parent.name, ""
    target = str(header.get("OBJECT", "") or "").strip() or default_target or path.parent.name
    return target, str(header.get("FILTER", "") or "").strip()


class FolderRouter:
    """Routes each FITS file of a watched folder to its target's stack (what ``watch_folder`` feeds).

    Files of other targets or filters than the ones asked for, and files under the output
    folder, are passed over (``add`` returns None).
    """

    def __init__(self, stacks: TargetLiveStacks, target: str | None = None, filter_name: str | None = None,
                 single_stack: str | None = None) -> None:
        self.stacks = stacks
        self.target = target
        self.filter_name = filter_name
        self.single_stack = single_stack

    def add(self, path: Path) -> LiveViewReport | None:
        path = Path(path)
        if self.stacks.out_dir.resolve() in path.resolve().parents:
            return None
        if self.single_stack is not None:
            return self.stacks.add(path, self.single_stack)
        target, filter_name = frame_key(path)
        if self.target is not None and target.casefold() != self.target.casefold():
            return None
        if self.filter_name is not None and filter_name.casefold() != self.filter_name.casefold():
            return None
        return self.stacks.add(path, target, filter_name)


def run_livestack_command(args: argparse.Namespace) -> int:
    """``datas-agent livestack``: stack a folder of FITS frames, once or as they arrive."""
    from datas_pipeline.errors import PipelineError
    from datas_pipeline.stacking.live import watch_folder

    directory = Path(args.directory).expanduser()
    if not directory.is_dir():
        print(f"datas-agent livestack: {directory} is not a folder (give the folder the camera writes to)",
              file=sys.stderr)
        return EXIT_USAGE
    out_dir = Path(args.out_dir).expanduser() if args.out_dir else directory / "livestack"
    stacks = TargetLiveStacks(out_dir, preview_every=args.every, max_stacks=args.max_stacks,
                              save_fits=args.save_fits, max_size=args.max_size,
                              stacker_options={"pixel_rejection_sigma": None if args.no_rejection else args.reject_sigma})
    router = FolderRouter(stacks, target=args.target, filter_name=args.filter,
                          single_stack=args.name if args.single else None)
    patterns = tuple(f"**/{p}" for p in FITS_PATTERNS) if args.recursive else FITS_PATTERNS
    seen = 0
    try:
        for report in watch_folder(directory, router, patterns=patterns, poll_seconds=args.poll,
                                   idle_timeout=args.idle_timeout, once=args.once):
            if report is None:
                continue
            seen += 1
            _print_report(report, args.json)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except PipelineError as exc:
        print(f"datas-agent livestack: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in stacks.close():
        print(f"preview {path}", file=sys.stderr)
    if not stacks.started:
        which = f" of {args.target}" if args.target else ""
        print(f"datas-agent livestack: no frame{which} in {directory} could start a stack "
              f"({seen} frame(s) looked at; clouds, too few stars, or not FITS?)", file=sys.stderr)
        return EXIT_NOTHING_STACKED
    return 0


def _print_report(report: LiveViewReport, json_out: bool) -> None:
    if json_out:
        print(json.dumps(report.as_dict(), default=float), flush=True)
    frame = report.frame
    status = "stacked" if frame.accepted else f"refused: {frame.reason}"
    label = f"{report.target} {report.filter}".strip()
    extra = f"; preview {report.preview}" if report.preview else ""
    print(f"{Path(frame.source).name} [{label}]: {status} ({frame.frames_stacked} in stack, "
          f"SNR x{frame.snr_gain:.2f}){extra}", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``datas-agent livestack`` to the command line."""
    p = sub.add_parser("livestack", help="live-stack a folder of FITS frames per target and filter, with previews")
    p.add_argument("directory", help="folder the frames are written to (the agent's: DATA_DIR/frames, --recursive)")
    p.add_argument("--out-dir", help="where previews and stacks go (default DIRECTORY/livestack)")
    p.add_argument("--every", type=_positive_int, default=5, help="accepted frames between previews (default 5)")
    p.add_argument("--once", action="store_true", help="stack the frames already there, then stop")
    p.add_argument("--idle-timeout", type=_positive_float, default=None,
                   help="watch mode: stop after this many seconds without a new frame (default: never)")
    p.add_argument("--poll", type=_positive_float, default=1.0, help="seconds between folder checks (default 1)")
    p.add_argument("--recursive", action="store_true", help="also look in sub-folders (the agent's date folders)")
    p.add_argument("--target", help="only frames whose OBJECT is this (case-insensitive)")
    p.add_argument("--filter", help="only frames whose FILTER is this")
    p.add_argument("--single", action="store_true", help="one stack of every frame, whatever OBJECT and FILTER say")
    p.add_argument("--name", default="live", help="with --single: the stack's file name (default live)")
    p.add_argument("--save-fits", action="store_true", help="also write each stack as FITS with its preview")
    p.add_argument("--max-stacks", type=_positive_int, default=4, help="stacks kept in memory at once (default 4)")
    p.add_argument("--max-size", type=_positive_int, default=1024, help="preview longest side in px (default 1024)")
    p.add_argument("--reject-sigma", type=_positive_float, default=5.0, help="pixel rejection in sigma (default 5)")
    p.add_argument("--no-rejection", action="store_true", help="a plain running mean")
    p.add_argument("--json", action="store_true", help="one JSON line per frame on stdout")
    p.set_defaults(func=run_livestack_command)


class AgentLiveView:
    """The running agent's live view; a failure here is logged and never reaches the observing loop."""

    def __init__(self, out_dir: Path, preview_every: int = 5, max_stacks: int = 2, save_fits: bool = False,
                 max_size: int = 1024) -> None:
        self.stacks = TargetLiveStacks(out_dir, preview_every=preview_every, max_stacks=max_stacks,
                                       save_fits=save_fits, max_size=max_size)

    def add(self, frame_path: Path, target: str, filter_name: str) -> LiveViewReport | None:
        """Stack a frame the agent has already written and queued; None if the live view failed."""
        try:
            report = self.stacks.add(frame_path, target, filter_name)
        except Exception as exc:  # noqa: BLE001 - the live view is a convenience; observing must go on
            log.warning("live stack of %s %s failed, starting it again: %s", target, filter_name, exc)
            self.stacks.stacks.pop((target, filter_name), None)
            return None
        frame = report.frame
        if frame.accepted:
            log.info("live stack %s %s: %d frame(s)%s", target, filter_name, frame.frames_stacked,
                     f", preview {report.preview}" if report.preview else "")
        else:
            log.info("live stack %s %s: frame refused (%s)", target, filter_name, frame.reason)
        return report

    def close(self) -> None:
        """Write the last previews (at shutdown)."""
        try:
            self.stacks.close()
        except Exception as exc:  # noqa: BLE001 - see add()
            log.warning("could not write the last live-stack previews: %s", exc)
