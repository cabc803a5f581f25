"""ASCOM Alpaca backend through alpyca: telescope, camera, filter wheel and safety monitor over HTTP.

Alpaca is plain HTTP/JSON, so it runs in the agent's process: a failure is an exception, not
a crash. Device errors (``ParkedException``, ``InvalidOperationException``...) and network
errors become :class:`DriverError` naming the device and the address.

Options (``hardware.alpaca``): ``address`` (host:port, default 127.0.0.1:11111), device numbers
``mount``/``camera``/``filter_wheel`` (0), ``safety_monitor`` (a device number, or absent),
``slew_timeout_s`` (300), ``exposure_timeout_s`` (extra seconds after the exposure, 120).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from datas_agent.drivers.base import (
    J2000,
    JNOW,
    Backend,
    Camera,
    Conditions,
    Exposure,
    ExposureRequest,
    FilterWheel,
    Mount,
)
from datas_agent.errors import DriverError

T = TypeVar("T")
# ASCOM EquatorialCoordinateType: 1 topocentric (epoch of date), 2 J2000; 0 "other" is taken as J2000.
EQUINOX_OF_SYSTEM = {0: J2000, 1: JNOW, 2: J2000}
CAMERA_ERROR_STATE = 5


def _alpaca():
    try:
        from alpaca import camera, exceptions, filterwheel, safetymonitor, telescope
    except ImportError:
        raise DriverError("the alpaca backend needs alpyca: pip install 'datas-agent[alpaca]'") from None
    return camera, exceptions, filterwheel, safetymonitor, telescope


def _wait(what: str, done: Callable[[], bool], timeout: float, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise DriverError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll_s)


class AlpacaBackend(Backend):
    name = "alpaca"
    extra = "alpaca"

    def __init__(self, options, hardware, site) -> None:
        super().__init__(options, hardware, site)
        self.address = str(options.get("address", "127.0.0.1:11111"))
        self.slew_timeout_s = float(options.get("slew_timeout_s", 300.0))
        self.exposure_timeout_s = float(options.get("exposure_timeout_s", 120.0))
        self._modules = _alpaca()
        self._safety = None

    def guard(self, device: str, action: str, call: Callable[[], T]) -> T:
        """Run one Alpaca call, turning its failures into a DriverError that says where."""
        import requests

        exceptions = self._modules[1]
        try:
            return call()
        except requests.RequestException as exc:
            reason = "connection refused" if "refused" in str(exc) else type(exc).__name__
            raise DriverError(f"Alpaca server at {self.address} unreachable ({reason}) during {device} {action}") from None
        except exceptions.DriverException as exc:
            raise DriverError(f"{device} at {self.address} failed to {action}: {exc}") from None
        except (exceptions.InvalidOperationException, exceptions.ParkedException, exceptions.NotConnectedException,
                exceptions.InvalidValueException, exceptions.ActionNotImplementedException,
                exceptions.NotImplementedException, exceptions.AlpacaRequestException) as exc:
            raise DriverError(f"{device} at {self.address} refused to {action}: {exc}") from None

    def _connect(self, device: Any, label: str) -> str:
        def connect() -> str:
            device.Connected = True
            return device.Name
        return self.guard(label, "connect", connect)

    def _number(self, role: str) -> int:
        return int(self.options.get(role, 0))

    def mount(self, device):
        return AlpacaMount(self, self._modules[4].Telescope(self.address, self._number("mount")))

    def camera(self, device):
        return AlpacaCamera(self, self._modules[0].Camera(self.address, self._number("camera")))

    def filter_wheel(self, device):
        return AlpacaFilterWheel(self, self._modules[2].FilterWheel(self.address, self._number("filter_wheel")))

    def conditions(self) -> Conditions:
        number = self.options.get("safety_monitor")
        if number is None:
            return Conditions()
        if self._safety is None:
            self._safety = self._modules[3].SafetyMonitor(self.address, int(number))
            self._connect(self._safety, "safety monitor")
        return Conditions(is_safe=bool(self.guard("safety monitor", "report", lambda: self._safety.IsSafe)))


class AlpacaMount(Mount):
    def __init__(self, backend: AlpacaBackend, device: Any) -> None:
        self.backend, self.device = backend, device
        self.name = backend._connect(device, "telescope")
        system = backend.guard(self.name, "report its coordinate system", lambda: device.EquatorialSystem)
        self.equinox = EQUINOX_OF_SYSTEM.get(int(system), J2000)

    def slew_to(self, ra_deg: float, dec_deg: float) -> None:
        device, guard = self.device, self.backend.guard
        if guard(self.name, "report parking", lambda: device.AtPark):
            guard(self.name, "unpark", device.Unpark)
        if not guard(self.name, "report tracking", lambda: device.Tracking):
            guard(self.name, "start tracking", lambda: setattr(device, "Tracking", True))
        guard(self.name, "slew", lambda: device.SlewToCoordinatesAsync((ra_deg % 360.0) / 15.0, dec_deg))
        _wait(f"{self.name} to finish slewing", lambda: not guard(self.name, "report slewing", lambda: device.Slewing),
              self.backend.slew_timeout_s)

    def position(self) -> tuple[float, float]:
        guard = self.backend.guard
        return (guard(self.name, "report RA", lambda: self.device.RightAscension) * 15.0,
                guard(self.name, "report Dec", lambda: self.device.Declination))

    def park(self) -> None:
        self.backend.guard(self.name, "park", self.device.Park)


class AlpacaFilterWheel(FilterWheel):
    def __init__(self, backend: AlpacaBackend, device: Any) -> None:
        self.backend, self.device = backend, device
        self.name = backend._connect(device, "filter wheel")

    def names(self) -> list[str]:
        return list(self.backend.guard(self.name, "list its filters", lambda: self.device.Names))

    def select(self, name: str) -> None:
        names = self.names()
        if name not in names:
            raise DriverError(f"{self.name}: no filter {name!r} (has {', '.join(names)})")
        guard = self.backend.guard
        guard(self.name, f"move to {name}", lambda: setattr(self.device, "Position", names.index(name)))
        # Position reads -1 while the wheel moves (ASCOM).
        _wait(f"{self.name} to reach {name}", lambda: guard(self.name, "report position",
                                                             lambda: self.device.Position) == names.index(name), 60.0)


class AlpacaCamera(Camera):
    def __init__(self, backend: AlpacaBackend, device: Any) -> None:
        self.backend, self.device = backend, device
        self.name = backend._connect(device, "camera")

    def _optional(self, getter: Callable[[], Any]) -> Any:
        try:
            return self.backend.guard(self.name, "report", getter)
        except DriverError:
            return None
        except Exception:  # NotImplementedException for properties a camera lacks
            return None

    def expose(self, request: ExposureRequest) -> Exposure:
        device, guard = self.device, self.backend.guard
        started = datetime.now(UTC)
        guard(self.name, "start an exposure", lambda: device.StartExposure(request.exposure_s, request.light))

        def ready() -> bool:
            if guard(self.name, "report its state", lambda: device.CameraState) == CAMERA_ERROR_STATE:
                raise DriverError(f"{self.name} at {self.backend.address} ended the exposure in its error state")
            return bool(guard(self.name, "report image ready", lambda: device.ImageReady))
        _wait(f"{self.name} to read out", ready, request.exposure_s + self.backend.exposure_timeout_s)
        # ASCOM arrays are [x][y]; numpy images are [y, x].
        image = np.asarray(guard(self.name, "send its image", lambda: device.ImageArray)).T
        max_adu = self._optional(lambda: device.MaxADU) or 65535
        data = np.clip(image, 0, 65535).astype(np.uint16) if max_adu <= 65535 else image.astype(np.float32)
        header = {"INSTRUME": self.name, "GAIN": self._optional(lambda: device.Gain),
                  "EGAIN": self._optional(lambda: device.ElectronsPerADU),
                  "CCD-TEMP": self._optional(lambda: device.CCDTemperature),
                  "XBINNING": self._optional(lambda: device.BinX), "YBINNING": self._optional(lambda: device.BinY),
                  "PIXSIZE1": self._optional(lambda: device.PixelSizeX),
                  "PIXSIZE2": self._optional(lambda: device.PixelSizeY), "SATURATE": max_adu}
        return Exposure(data=data, started_at=started, exposure_s=request.exposure_s,
                        header={k: v for k, v in header.items() if v is not None})
