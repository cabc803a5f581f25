"""The observing loop: heartbeat, ranked list, observability, slew, filter, expose, measure, queue, upload.

Nothing here waits on the server to keep observing: the last ranked list is cached on disk,
every frame and record goes to the durable outbox before any upload is tried, and uploads
drain between exposures and while idle, in order, with backoff.
"""
from __future__ import annotations

import json
import logging
import signal
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from datas_pipeline.sky.filters import match_filter, resolve_filters

from datas_agent.client import ApiError, AuthError, DatasClient
from datas_agent.config import AgentConfig
from datas_agent.drivers import Rig, open_rig
from datas_agent.drivers.base import Conditions, ExposureRequest
from datas_agent.errors import DriverError
from datas_agent.frames import FrameContext, build_header, header_summary, mid_exposure, write_frame_file
from datas_agent.livestack import AgentLiveView
from datas_agent.measure import measure_frame
from datas_agent.observability import Visibility, check_visibility, to_mount_equinox
from datas_agent.queue import Outbox
from datas_agent.storage import atomic_write_bytes, remove_partial_files
from datas_agent.uploader import Uploader

log = logging.getLogger(__name__)
EXIT_HARDWARE = 3


@dataclass(frozen=True)
class Step:
    """Part of a visit: ``count`` frames of ``exposure_s`` (None: the agent's default) through ``filter``."""

    filter: str
    exposure_s: float | None
    count: int


def _plan_steps(entry: dict) -> tuple[Step, ...]:
    """The scheduler's per-filter plan (``plan.filter_plan``: the wheel's names, exposures, counts)."""
    steps = []
    for item in (entry.get("plan") or {}).get("filter_plan") or ():
        try:
            steps.append(Step(str(item["filter"]), float(item["exposure_sec"]) if item.get("exposure_sec") else None,
                              max(int(item.get("count") or 1), 1)))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"target {entry.get('name', entry.get('id'))!r} has a malformed filter plan") from None
    return tuple(steps)


@dataclass(frozen=True)
class Target:
    """One entry of the site's ranked list, as the agent needs it.

    ``plan`` is what to do there: the scheduler's per-filter plan when the list carries one,
    else one step per requested filter with the requested exposure and frame count.
    """

    id: Any
    name: str
    ra_deg: float
    dec_deg: float
    filters: tuple[str, ...] = ()
    exposure_s: float | None = None
    frames_per_filter: int = 1
    magnitude: float | None = None
    comparison_stars: tuple[dict, ...] = ()
    upload_frames: bool = False
    plan: tuple[Step, ...] = ()

    @classmethod
    def from_api(cls, entry: dict) -> Target:
        """Read a ranked-list entry; raise ``ValueError`` naming what is missing."""
        req = entry.get("observation_requirements") or entry.get("requirements") or {}
        try:
            ra = float(entry.get("ra_deg", entry.get("ra")))
            dec = float(entry.get("dec_deg", entry.get("dec")))
        except (TypeError, ValueError):
            raise ValueError(f"target {entry.get('name', entry.get('id'))!r} has no ra_deg/dec_deg") from None
        filters = req.get("filters") or entry.get("filters") or ()
        exposure = req.get("exposure_sec", req.get("exposure_per_frame_sec", entry.get("exposure_sec")))
        frames = max(int(req.get("frames", req.get("frames_per_filter", 1)) or 1), 1)
        exposure_s = float(exposure) if exposure else None
        plan = _plan_steps(entry) or tuple(Step(str(f), exposure_s, frames) for f in filters)
        return cls(
            id=entry.get("id", entry.get("target_id")),
            name=str(entry.get("name") or entry.get("id")),
            ra_deg=ra % 360.0,
            dec_deg=dec,
            filters=tuple(str(f) for f in filters),
            exposure_s=exposure_s,
            frames_per_filter=frames,
            magnitude=float(entry["magnitude"]) if entry.get("magnitude") is not None else None,
            comparison_stars=tuple(entry.get("comparison_stars") or req.get("comparison_stars") or ()),
            upload_frames=bool(entry.get("upload_frames") or entry.get("frames_requested")),
            plan=plan,
        )


@dataclass
class CycleReport:
    observed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    status: str = "idle"


def utc_now() -> datetime:
    return datetime.now(UTC)


class ObservingAgent:
    """One site's agent. ``rig`` may be ``None`` until the hardware answers."""

    def __init__(self, config: AgentConfig, client: DatasClient, outbox: Outbox, rig: Rig | None = None) -> None:
        self.config = config
        self.client = client
        self.outbox = outbox
        self.uploader = Uploader(outbox, client)
        self.rig = rig
        self.hardware_error: str | None = None
        self.stopping = False
        self.last_status = "idle"  # what the previous cycle told the portal
        self._targets_cache = config.data_dir / "ranked_targets.json"
        self._etag_file = config.data_dir / "ranked_targets.etag"  # If-None-Match for the next poll
        live = config.livestack
        self.live_view = AgentLiveView(config.livestack_dir, live.preview_every, live.max_stacks,
                                       live.save_fits) if live.enabled else None

    # -- hardware --------------------------------------------------------------------------

    def ensure_rig(self) -> Rig | None:
        if self.rig is None:
            try:
                self.rig = open_rig(self.config)
                self.hardware_error = None
                log.info("hardware connected: camera %s", self.rig.camera.name)
            except DriverError as exc:
                if self.hardware_error != str(exc):
                    log.error("hardware unavailable: %s", exc)
                self.hardware_error = str(exc)
        return self.rig

    def drop_rig(self, reason: str) -> None:
        log.error("hardware failed, reconnecting on the next cycle: %s", reason)
        self.hardware_error = reason
        if self.rig is not None:
            self.rig.close()
            self.rig = None

    # -- server ----------------------------------------------------------------------------

    def heartbeat(self, status: str, conditions: Conditions | None = None) -> None:
        counts = self.outbox.counts()
        details = {"queue_pending": counts["pending"] + counts["record_sent"]}
        if self.hardware_error:
            details["message"] = self.hardware_error
        try:
            # Without a rig there is no sensor reading to report: say nothing of the weather.
            self.client.heartbeat(status, weather=conditions.weather if conditions else None, details=details,
                                  weather_status=conditions.weather_status() if conditions else None)
        except AuthError as exc:
            log.error("heartbeat refused, check the site key: %s", exc.message)
        except ApiError as exc:
            log.warning("heartbeat failed: %s", exc.message)

    def ranked_targets(self) -> list[Target]:
        """The server's ranked list; the last one received when the server cannot be reached."""
        try:
            entries = self._poll_ranked_list()
        except ApiError as exc:
            level = logging.ERROR if isinstance(exc, AuthError) else logging.WARNING
            log.log(level, "cannot fetch the ranked list (%s); using the last one received", exc.message)
            try:
                entries = json.loads(self._targets_cache.read_text())
            except (OSError, ValueError):
                return []
        targets = []
        for entry in entries:
            try:
                targets.append(Target.from_api(entry))
            except ValueError as exc:
                log.warning("skipping a ranked-list entry: %s", exc)
        return targets

    def _poll_ranked_list(self) -> list[dict]:
        """Ask for the list with the last one's ETag: a 304 reuses the copy on disk (one cheap poll)."""
        try:
            etag = self._etag_file.read_text().strip() or None
            cached = json.loads(self._targets_cache.read_text())
        except (OSError, ValueError):
            etag, cached = None, None
        polled = self.client.ranked_list(self.config.targets_per_poll, etag=etag if cached is not None else None)
        if polled.not_modified and cached is not None:
            return cached
        entries = polled.entries or []
        atomic_write_bytes(self._targets_cache, json.dumps(entries).encode())
        atomic_write_bytes(self._etag_file, (polled.etag or "").encode())
        return entries

    def upload_pending(self, max_items: int | None = None) -> float:
        """Send what is due (at most ``max_items``); return seconds until the queue head may be
        retried (0 if empty)."""
        return self.uploader.drain(max_items=max_items).wait_s

    # -- observing -------------------------------------------------------------------------

    def wheel_filters(self) -> list[str]:
        """The names the filter wheel answers to (narrowed by ``hardware.filters`` when configured)."""
        rig = self.rig
        available = rig.filter_wheel.names() if rig and rig.filter_wheel else list(self.config.hardware.filters)
        if self.config.hardware.filters:
            available = [f for f in available if f in self.config.hardware.filters]
        return available

    def choose_steps(self, target: Target) -> tuple[list[Step], str | None]:
        """The visit's steps with the wheel's own filter names, matched as the scheduler matches them.

        ``Ha`` is the wheel's ``H-Alpha`` (datas_pipeline.sky.filters: exact name first, then by
        band); with nothing requested, the wheel's luminance/clear filter or else its first slot.
        """
        available = self.wheel_filters()
        if not available:  # no wheel to turn: the plan's names are recorded as they are
            return (list(target.plan) or [Step("CLEAR", target.exposure_s, target.frames_per_filter)]), None
        if not target.plan:
            (name,) = resolve_filters([], available)
            return [Step(name, target.exposure_s, target.frames_per_filter)], None
        steps = [Step(name, step.exposure_s, step.count) for step in target.plan
                 if (name := match_filter(step.filter, available)) is not None]
        if not steps:
            wanted = ", ".join(step.filter for step in target.plan)
            return [], f"none of its filters ({wanted}) is in this wheel ({', '.join(available)})"
        return steps, None

    def choose_filters(self, target: Target) -> tuple[list[str], str | None]:
        """The wheel's names of the filters the target's plan asks for, in plan order."""
        steps, problem = self.choose_steps(target)
        return list(dict.fromkeys(step.filter for step in steps)), problem

    def take_frame(self, target: Target, filter_name: str, visibility: Visibility,
                   exposure_s: float | None = None) -> str:
        """Expose once, write the FITS, measure, and queue the record. Returns the observation_id."""
        rig = self.rig
        assert rig is not None
        if rig.filter_wheel is not None:
            rig.filter_wheel.select(filter_name)
        exposure_s = exposure_s or target.exposure_s or self.config.default_exposure_s
        exposure = rig.camera.expose(ExposureRequest(
            exposure_s=exposure_s, target_name=target.name, target_ra_deg=target.ra_deg,
            target_dec_deg=target.dec_deg, target_magnitude=target.magnitude))
        observation_id = str(uuid.uuid4())
        context = FrameContext(
            observation_id=observation_id, target_id=target.id, target_name=target.name, ra_deg=target.ra_deg,
            dec_deg=target.dec_deg, filter_name=filter_name, airmass=visibility.airmass,
            altitude_deg=visibility.altitude_deg, azimuth_deg=visibility.azimuth_deg,
            telescope=self.config.hardware.telescope_name)
        header = build_header(exposure, context, self.config)
        started = exposure.started_at.astimezone(UTC)
        frame_path = self.config.frames_dir / started.strftime("%Y%m%d") / f"{started:%Y%m%dT%H%M%S}_{observation_id}.fits"
        digest = write_frame_file(frame_path, exposure.data, header)
        measurement = measure_frame(exposure.data, header, target.ra_deg, target.dec_deg, exposure.exposure_s,
                                    pixel_scale_arcsec=self.config.hardware.pixel_scale_arcsec,
                                    comparison_stars=list(target.comparison_stars))
        record = {
            "observation_id": observation_id,
            "target_id": target.id,
            **({"site_id": int(self.config.server.site_id)} if self.config.server.site_id.isdigit() else {}),
            "observed_at": mid_exposure(exposure).astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "exposure_sec": exposure.exposure_s,
            "filter": filter_name,
            "airmass": round(max(visibility.airmass, 1.0), 4),
            **measurement.record_fields(),
            "fits_header": header_summary(header),
            "image_ref": frame_path.name,
        }
        upload_frame = self.config.upload_frames or target.upload_frames
        self.outbox.enqueue(record, frame_path=frame_path, frame_sha256=digest, upload_frame=upload_frame)
        if self.live_view is not None:  # only after the record is safe in the outbox
            self.live_view.add(frame_path, target.name, filter_name)
        phot = measurement.photometry
        log.info("observed %s in %s: %d sources, %s%s", target.name, filter_name, measurement.n_sources,
                 f"mag {phot['magnitude']:.3f} +/- {phot['error']:.3f} ({phot['method']})" if phot else "no photometry",
                 f", flags {','.join(measurement.flags)}" if measurement.flags else "")
        return observation_id

    def visibility_now(self, target: Target) -> Visibility:
        """The target's visibility at this moment, with the site's safety read afresh."""
        assert self.rig is not None
        conditions = self.rig.conditions()
        return check_visibility([target.ra_deg], [target.dec_deg], utc_now(), self.config.site, self.config.safety,
                                conditions.is_safe)[0]

    def observe(self, target: Target, visibility: Visibility) -> list[str]:
        rig = self.rig
        assert rig is not None
        steps, problem = self.choose_steps(target)
        if problem:
            raise ValueError(problem)
        if rig.mount is not None:
            now = utc_now()
            ra, dec = to_mount_equinox(target.ra_deg, target.dec_deg, now, rig.mount.equinox)
            log.info("slewing to %s (J2000 %.4f %+.4f -> %s %.4f %+.4f)", target.name, target.ra_deg,
                     target.dec_deg, rig.mount.equinox, ra, dec)
            rig.mount.slew_to(ra, dec)
        ids = []
        for step in steps:
            for _ in range(step.count):
                if self.stopping:
                    return ids
                if ids:  # a long sequence: still up, still dark, still safe? (and its airmass now)
                    visibility = self.visibility_now(target)
                    if not visibility.observable:
                        log.info("stopping %s after %d frame(s): %s", target.name, len(ids), visibility.reason)
                        return ids
                ids.append(self.take_frame(target, step.filter, visibility, step.exposure_s))
                # A little between exposures, never a whole backlog: observing must not wait on it.
                self.upload_pending(max_items=2)
        return ids

    def cycle(self) -> CycleReport:
        """One pass: heartbeat, the ranked list, and every observable entry observed once."""
        report = CycleReport()
        remove_partial_files(self.config.frames_dir)
        rig = self.ensure_rig()
        conditions = None
        if rig is not None:
            try:
                conditions = rig.conditions()
            except DriverError as exc:  # an unreachable sensor: reconnect next cycle, like any device
                self.drop_rig(str(exc))
                rig = None
        if rig is None:
            report.status = "error"
            self.heartbeat(report.status)
            self.upload_pending()
            return report
        # Check in before asking for the list: the heartbeat carries the weather report the
        # portal's scheduler needs before it hands this site anything.
        unsafe = conditions is not None and conditions.is_safe is False
        announced = "closed" if unsafe else self.last_status
        self.heartbeat(announced, conditions)
        targets = self.ranked_targets()
        now = utc_now()
        visibilities = check_visibility([t.ra_deg for t in targets], [t.dec_deg for t in targets], now,
                                        self.config.site, self.config.safety,
                                        conditions.is_safe if conditions else None) if targets else []
        observable = [(t, v) for t, v in zip(targets, visibilities, strict=True) if v.observable]
        for target, visibility in zip(targets, visibilities, strict=True):
            if not visibility.observable:
                report.skipped[target.name] = visibility.reason or "not observable"
        report.status = "observing" if observable else ("closed" if unsafe else "idle")
        if report.status != announced:  # at most one more request, and only when the state changes
            self.heartbeat(report.status, conditions)
        self.last_status = report.status
        for target, visibility in observable:
            if self.stopping:
                break
            try:
                report.observed += self.observe(target, visibility)
            except ValueError as exc:
                report.skipped[target.name] = str(exc)
                log.warning("skipping %s: %s", target.name, exc)
            except DriverError as exc:
                self.drop_rig(str(exc))
                report.status = "error"
                break
            except (OSError, sqlite3.Error) as exc:  # a full disk or an unwritable queue
                log.error("cannot store observations (%s); observing stops until it is fixed", exc)
                report.status = "error"
                break
        for name, reason in report.skipped.items():
            log.info("not observing %s: %s", name, reason)
        self.upload_pending()
        return report

    def run(self, cycles: int | None = None, stop_when_idle: bool = False) -> int:
        done = 0
        while not self.stopping:
            report = self.cycle()
            done += 1
            if cycles is not None and done >= cycles:
                break
            if stop_when_idle and not report.observed and self.outbox.head() is None:
                break
            if not report.observed:
                self.idle(self.config.poll_interval_s)
        if self.rig is None and self.hardware_error:
            log.error("stopped without hardware: %s", self.hardware_error)
            return EXIT_HARDWARE
        return 0

    def idle(self, seconds: float) -> None:
        """Wait ``seconds``, uploading whenever the queue's head is due."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            wait = self.upload_pending()
            pause = min(deadline - time.monotonic(), wait if wait > 0 else seconds, 1.0)
            if pause > 0:
                time.sleep(pause)


def run_agent(config: AgentConfig, cycles: int | None = None, stop_when_idle: bool = False) -> int:
    """Run the agent until stopped (SIGTERM/SIGINT finish the current step, then stop)."""
    logging.getLogger().setLevel(config.log_level)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    client = DatasClient(config.server.url, config.server.api_key, config.server.site_id, config.server.timeout_s)
    with Outbox(config.queue_path) as outbox:
        agent = ObservingAgent(config, client, outbox)

        def stop(signum: int, _frame: object) -> None:
            log.info("signal %d: stopping after the current step", signum)
            agent.stopping = True

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            return agent.run(cycles=cycles, stop_when_idle=stop_when_idle)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if agent.live_view is not None:
                agent.live_view.close()
            if agent.rig is not None:
                agent.rig.close()
            client.close()

