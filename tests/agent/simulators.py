"""Real hardware simulators for the tests: indiserver with INDI's simulators, alpaca-simulators.

Each starts on a free port on 127.0.0.1 (indiserver itself listens on every interface; 1.9.9
has no option to bind one) and is always stopped, with its driver children, by process group.
INDI's CCD simulator draws real Tycho-2 stars through a ``gsc`` stand-in backed by a SQLite
catalogue decoded from Debian's astrometry.net index files (built once, cached).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.agent.conftest import agent_env

INDEX = Path("/usr/share/astrometry/index-tycho2-08.littleendian.fits")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "datas-agent-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and everything it spawned."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # driver children that outlived indiserver


def tycho_catalogue() -> Path:
    """The cached Tycho-2 SQLite catalogue (built in about 2 s on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / "tycho2-08.sqlite"
    if not db.exists():
        from datas_agent.tycho import build_catalogue

        build_catalogue(db, [INDEX])
    return db


def indi_available() -> str | None:
    """Why the INDI tests cannot run here, or None when they can."""
    if not shutil.which("indiserver"):
        return "indiserver not installed (Debian package indi-bin)"
    try:
        import PyIndi  # noqa: F401
    except ImportError:
        return "pyindi-client not installed"
    if not INDEX.exists():
        return f"{INDEX} missing (Debian package astrometry-data-tycho2)"
    return None


class IndiServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self, focal_length_mm: float = 200.0, resolution: tuple[int, int] = (640, 512)) -> IndiServer:
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        gsc = bin_dir / "gsc"
        gsc.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datas_agent.tycho gsc "$@"\n')
        gsc.chmod(0o755)
        env = agent_env(HOME=str(self.workdir), DATAS_TYCHO_DB=str(tycho_catalogue()),
                        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        self.log = open(self.workdir / "indiserver.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["indiserver", "-v", "-u", str(self.workdir / "indi.sock"), "-p", str(self.port),
             "indi_simulator_telescope", "indi_simulator_ccd", "indi_simulator_wheel"],
            cwd=self.workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, proc=self.proc)
        self.setprop("Telescope Simulator.TELESCOPE_INFO.TELESCOPE_APERTURE;TELESCOPE_FOCAL_LENGTH;"
                     f"GUIDER_APERTURE;GUIDER_FOCAL_LENGTH=50;{focal_length_mm};50;{focal_length_mm}")
        # Saturation at mag 1 and limit at 1 + 2.5 log10(65000) make the simulator's flux scale
        # Pogson's (its k factor is 1), so differential magnitudes come out true.
        self.setprop("CCD Simulator.SIMULATOR_SETTINGS.SIM_XRES;SIM_YRES;SIM_SATURATION;SIM_LIMITINGMAG="
                     f"{resolution[0]};{resolution[1]};1;13.03")
        return self

    def setprop(self, assignment: str) -> None:
        deadline = time.monotonic() + 10
        while True:
            done = subprocess.run(["indi_setprop", "-p", str(self.port), assignment], capture_output=True,
                                  text=True, timeout=20)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # the driver has not defined the property yet
        assert done.returncode == 0, f"indi_setprop {assignment}: {done.stderr}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None
            self.log.close()


def alpaca_available() -> str | None:
    """Why the Alpaca tests cannot run here, or None when they can."""
    if not (Path(sys.executable).parent / "alpaca-simulators").exists():
        return "alpaca-simulators not installed in this environment"
    try:
        import alpaca  # noqa: F401
    except ImportError:
        return "alpyca not installed"
    if not INDEX.exists():
        return f"{INDEX} missing (Debian package astrometry-data-tycho2)"
    return None


class AlpacaSimulators:
    """alpaca-simulators on 127.0.0.1 whose camera renders Tycho-2 stars from the local catalogue."""

    def __init__(self, workdir: Path, latitude: float, longitude: float) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.latitude, self.longitude = latitude, longitude
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> AlpacaSimulators:
        import yaml
        from alpaca_simulators.config import Config

        config = yaml.safe_load(Config._DEFAULT_PATH.read_text())
        camera, telescope = config["devices"]["camera"][0], config["devices"]["telescope"][0]
        camera.update(cameraxsize=512, cameraysize=512, numx=512, numy=512)
        # A 0.5 m focal length gives a field wide enough to hold Tycho-2 stars (the default 8 m does not).
        telescope.update(focallength=0.5, aperturediameter=0.1, slew_rate=90.0,
                         sitelatitude=self.latitude, sitelongitude=self.longitude)
        config["tap_source"] = str(tycho_catalogue())   # offline: no Gaia TAP query
        config["gaia_query_timeout"] = 20
        path = self.workdir / "alpaca.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = open(self.workdir / "alpaca.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "alpaca-simulators"), "--host", "127.0.0.1", "--port", str(self.port),
             "--config", str(path)], cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, env=agent_env(HOME=str(self.workdir)))
        wait_for_port(self.port, timeout=60, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None
            self.log.close()
