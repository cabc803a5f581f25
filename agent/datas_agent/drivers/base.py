"""The hardware interface every backend implements: a mount, a camera, a filter wheel.

A *backend* (simulator, INDI, Alpaca, Pi camera) is one connection to one kind of hardware
server; it hands out the devices it drives. Coordinates cross this interface in degrees;
each mount says which equinox it expects (``J2000`` or ``JNOW``, the epoch of date) and the
observing loop converts. Images come back as numpy arrays in ``data[y, x]`` order, in ADU.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np

from datas_agent.config import HardwareConfig, SiteConfig

J2000 = "J2000"
JNOW = "JNOW"


@dataclass(frozen=True)
class ExposureRequest:
    """What the camera is asked for. ``target_*`` (J2000 degrees) only informs simulators."""

    exposure_s: float
    light: bool = True
    target_name: str | None = None
    target_ra_deg: float | None = None
    target_dec_deg: float | None = None
    target_magnitude: float | None = None


@dataclass
class Exposure:
    """A finished exposure: the pixels and what the device knows about them.

    ``header`` holds FITS cards the device supplies (INSTRUME, GAIN, CCD-TEMP, XBINNING,
    PIXSIZE1, a WCS if it has one...); the agent adds the rest.
    """

    data: np.ndarray
    started_at: datetime
    exposure_s: float
    header: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conditions:
    """Safety and weather as the site's sensors report them (``None`` = no sensor).

    ``weather`` readings use ``cloud_cover`` (fraction 0-1), ``humidity`` (%), ``wind_speed``
    (m/s) and ``rain_rate`` (mm/h) when the sensors give them.
    """

    is_safe: bool | None = None
    weather: dict[str, float] | None = None

    def weather_status(self) -> str:
        """The portal's ``weather_status`` for a heartbeat.

        ``unknown`` when the site has no sensor (the scheduler accepts it); otherwise the
        most specific bad condition the readings show, and ``cloudy`` for an unsafe report
        that names no cause, so an unsafe site is never handed targets.
        """
        readings = self.weather or {}
        if self.is_safe is None and not readings:
            return "unknown"
        if readings.get("rain_rate", 0.0) > 0.0:
            return "rain"
        cloud = readings.get("cloud_cover")
        if self.is_safe is False:
            if readings.get("humidity", 0.0) >= 90.0:
                return "humid"
            if readings.get("wind_speed", 0.0) >= 15.0 and (cloud is None or cloud < 0.5):
                return "wind"
            return "cloudy"
        if cloud is not None and cloud >= 0.7:
            return "cloudy"
        if cloud is not None and cloud >= 0.3:
            return "partly_cloudy"
        return "clear"


class Mount(ABC):
    name: str
    equinox: str = J2000

    @abstractmethod
    def slew_to(self, ra_deg: float, dec_deg: float) -> None:
        """Slew to (ra, dec) in this mount's equinox and return when tracking there."""

    @abstractmethod
    def position(self) -> tuple[float, float]:
        """Current (ra, dec) in degrees, in this mount's equinox."""

    def park(self) -> None:  # noqa: B027 - parking is optional
        """Park the mount, when it can."""


class Camera(ABC):
    name: str

    @abstractmethod
    def expose(self, request: ExposureRequest) -> Exposure:
        """Take one exposure and return it (blocking until the image is read out)."""


class FilterWheel(ABC):
    name: str

    @abstractmethod
    def names(self) -> list[str]:
        """Filter names in slot order, as the wheel reports them."""

    @abstractmethod
    def select(self, name: str) -> None:
        """Move to the named filter and return when it is in place."""


class Backend(ABC):
    """One connection to a kind of hardware. Subclasses set ``name`` and are listed in the registry."""

    name: ClassVar[str]
    #: The PyPI extra that installs this backend's library, for the error message when it is missing.
    extra: ClassVar[str | None] = None

    def __init__(self, options: dict[str, Any], hardware: HardwareConfig, site: SiteConfig) -> None:
        self.options = options
        self.hardware = hardware
        self.site = site

    def connect(self) -> None:  # noqa: B027 - backends without a session have nothing to open
        """Open the connection (raise ``DriverError`` with the address when unreachable)."""

    def close(self) -> None:  # noqa: B027
        """Release the connection; safe to call twice."""

    def mount(self, device: str | None) -> Mount:
        raise NotImplementedError(f"the {self.name} backend has no mount")

    def camera(self, device: str | None) -> Camera:
        raise NotImplementedError(f"the {self.name} backend has no camera")

    def filter_wheel(self, device: str | None) -> FilterWheel:
        raise NotImplementedError(f"the {self.name} backend has no filter wheel")

    def conditions(self) -> Conditions:
        return Conditions()
