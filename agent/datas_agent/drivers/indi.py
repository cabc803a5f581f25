"""INDI backend: mount, camera and filter wheel on an indiserver, through pyindi-client.

The INDI client lives in a child process (``indi_worker``) so a crash in the native library
(pyindi-client BLOB segfaults are on record) costs one command, not the agent: the call
raises :class:`DriverCrashedError`, the loop reconnects on its next cycle, and the queue is
untouched. A command that hangs is bounded by a timeout after which the child is killed.

Options (``hardware.indi``): ``host`` (127.0.0.1), ``port`` (7624), ``connect_timeout_s``
(15), ``slew_timeout_s`` (300), ``exposure_timeout_s`` (extra seconds after the exposure, 120).
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from astropy.io import fits

from datas_agent.drivers.base import (
    JNOW,
    Backend,
    Camera,
    Exposure,
    ExposureRequest,
    FilterWheel,
    Mount,
)
from datas_agent.errors import DriverCrashedError, DriverError

log = logging.getLogger(__name__)
WORKER_ENV = "DATAS_INDI_WORKER"
# Cards the INDI CCD driver writes that describe the camera, worth keeping in our header.
DEVICE_CARDS = ("INSTRUME", "GAIN", "CCD-TEMP", "XBINNING", "YBINNING", "PIXSIZE1", "PIXSIZE2", "OFFSET")


def agent_command() -> list[str]:
    """How to run this agent again as a child (the frozen executable runs itself)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "datas_agent"]


def import_roots() -> list[str]:
    """Where this process found datas_agent and datas_pipeline, so the child finds the same code."""
    import datas_pipeline

    import datas_agent

    return sorted({str(Path(module.__file__).resolve().parent.parent) for module in (datas_agent, datas_pipeline)})


def _accept(listener: Listener) -> Connection | None:
    try:
        return listener.accept()
    except OSError:  # closed because the child never called
        return None


class IndiBackend(Backend):
    name = "indi"
    extra = "indi"

    def __init__(self, options, hardware, site) -> None:
        super().__init__(options, hardware, site)
        self.host = str(options.get("host", "127.0.0.1"))
        self.port = int(options.get("port", 7624))
        self.connect_timeout_s = float(options.get("connect_timeout_s", 15.0))
        self.slew_timeout_s = float(options.get("slew_timeout_s", 300.0))
        self.exposure_timeout_s = float(options.get("exposure_timeout_s", 120.0))
        self.devices: dict[str, str] = {}
        self._process: subprocess.Popen | None = None
        self._conn = None
        self._blob_dir = Path(tempfile.mkdtemp(prefix="datas-indi-"))

    # -- the child process -------------------------------------------------------------------

    def connect(self) -> None:
        if importlib.util.find_spec("PyIndi") is None:
            raise DriverError("the indi backend needs pyindi-client: pip install 'datas-agent[indi]'")
        for role, device in self.hardware.devices.items():
            if device.backend == self.name:
                self.devices[role] = device.name or {"mount": "Telescope Simulator", "camera": "CCD Simulator",
                                                     "filter_wheel": "Filter Simulator"}[role]
        self._start()

    def _start(self) -> None:
        """Start the child and wait for it to connect back over an authenticated local socket."""
        authkey = secrets.token_bytes(16)
        listener = Listener(("127.0.0.1", 0), authkey=authkey)
        host, port = listener.address
        env = dict(os.environ, **{WORKER_ENV: f"{host}:{port}:{authkey.hex()}"})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (*import_roots(), env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen([*agent_command(), "_indi-worker"], env=env, stdin=subprocess.DEVNULL)
        accepted: list = []
        acceptor = threading.Thread(target=lambda: accepted.append(_accept(listener)), daemon=True)
        acceptor.start()
        deadline = time.monotonic() + 30.0
        while acceptor.is_alive() and self._process.poll() is None and time.monotonic() < deadline:
            acceptor.join(0.05)
        listener.close()
        acceptor.join(1.0)
        if not accepted or accepted[0] is None:
            code = self._process.poll()
            self._stop()
            raise DriverError(f"the INDI client process did not start (exit {code}); see the log above")
        self._conn = accepted[0]
        self.call("connect", self.host, self.port, self.devices, self.connect_timeout_s,
                  timeout=self.connect_timeout_s * (len(self.devices) + 1) + 10)
        log.info("INDI client process %d connected to %s:%d (%s)", self._process.pid, self.host, self.port,
                 ", ".join(self.devices.values()))

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def call(self, method: str, *args: Any, timeout: float = 60.0) -> Any:
        """Run ``method`` in the INDI child; restart the child first if an earlier one died."""
        if not self._alive():
            if self._process is not None:
                code = self._process.returncode
                self._stop()
                log.warning("INDI client process had died (exit %s); restarting it", code)
            if method != "connect":
                self._start()
        assert self._conn is not None and self._process is not None
        try:
            self._conn.send((method, args))
            if not self._conn.poll(timeout):
                self._stop()
                raise DriverError(f"INDI {method} did not finish within {timeout:g} s; the client was restarted")
            status, value = self._conn.recv()
        except (EOFError, OSError):
            try:
                code = self._process.wait(2)
            except subprocess.TimeoutExpired:
                code = None
            self._stop()
            raise DriverCrashedError(
                f"the INDI client process died during {method} (exit {code}); it restarts on the next command"
            ) from None
        if status != "ok":
            raise DriverError(f"INDI {method} on {self.host}:{self.port}: {value}")
        return value

    def close(self) -> None:
        if self._alive() and self._conn is not None:
            with contextlib.suppress(EOFError, OSError):
                self._conn.send(("close", ()))
                if self._conn.poll(5):
                    self._conn.recv()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self._stop()
        shutil.rmtree(self._blob_dir, ignore_errors=True)

    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- devices ---------------------------------------------------------------------------

    def mount(self, device):
        return IndiMount(self)

    def camera(self, device):
        return IndiCamera(self)

    def filter_wheel(self, device):
        return IndiFilterWheel(self)


class IndiMount(Mount):
    equinox = JNOW  # EQUATORIAL_EOD_COORD is the epoch of date

    def __init__(self, backend: IndiBackend) -> None:
        self.backend = backend
        self.name = backend.devices["mount"]

    def slew_to(self, ra_deg: float, dec_deg: float) -> None:
        self.backend.call("slew", (ra_deg % 360.0) / 15.0, dec_deg, self.backend.slew_timeout_s,
                          timeout=self.backend.slew_timeout_s + 10)

    def position(self) -> tuple[float, float]:
        ra_hours, dec = self.backend.call("position")
        return ra_hours * 15.0, dec

    def park(self) -> None:
        self.backend.call("park")


class IndiFilterWheel(FilterWheel):
    def __init__(self, backend: IndiBackend) -> None:
        self.backend = backend
        self.name = backend.devices["filter_wheel"]

    def names(self) -> list[str]:
        return list(self.backend.call("filter_names"))

    def select(self, name: str) -> None:
        names = self.names()
        if name not in names:
            raise DriverError(f"{self.name}: no filter {name!r} (has {', '.join(names)})")
        self.backend.call("set_filter", names.index(name) + 1)  # INDI slots are 1-based


class IndiCamera(Camera):
    def __init__(self, backend: IndiBackend) -> None:
        self.backend = backend
        self.name = backend.devices["camera"]

    def expose(self, request: ExposureRequest) -> Exposure:
        b = self.backend
        path = b._blob_dir / f"blob-{os.getpid()}-{datetime.now(UTC):%H%M%S%f}.fits"
        started = datetime.now(UTC)
        b.call("expose", request.exposure_s, str(path), request.light, b.exposure_timeout_s,
               timeout=request.exposure_s + b.exposure_timeout_s + 10)
        try:
            with fits.open(path) as hdul:
                data = hdul[0].data
                header = hdul[0].header
                cards = {key: header[key] for key in DEVICE_CARDS if key in header}
                if "DATE-OBS" in header:
                    started = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
                data = data.copy()
        except (OSError, ValueError, TypeError) as exc:
            raise DriverError(f"{self.name}: the image it sent is not a readable FITS file ({exc})") from None
        finally:
            path.unlink(missing_ok=True)
        cards.setdefault("INSTRUME", self.name)
        return Exposure(data=data, started_at=started, exposure_s=request.exposure_s, header=cards)
