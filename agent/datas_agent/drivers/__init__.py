"""The registry of hardware backends and the one loader that builds a rig from the configuration.

Backends are listed here by name as dotted paths and imported only when a configuration
uses them, so a site without INDI never needs pyindi-client. Third-party backends register
through the ``datas_agent.backends`` entry-point group (``name = "package.module:Class"``).
"""
from __future__ import annotations

import contextlib
import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from datas_agent.config import AgentConfig
from datas_agent.drivers.base import Backend, Camera, Conditions, FilterWheel, Mount
from datas_agent.errors import DriverError

log = logging.getLogger(__name__)

BACKENDS: dict[str, str] = {
    "simulator": "datas_agent.drivers.simulator:SimulatorBackend",
    "indi": "datas_agent.drivers.indi:IndiBackend",
    "alpaca": "datas_agent.drivers.alpaca:AlpacaBackend",
    "picamera": "datas_agent.drivers.picamera:PiCameraBackend",
}
ENTRY_POINT_GROUP = "datas_agent.backends"


def backend_class(name: str) -> type[Backend]:
    """Import and return the backend class registered as ``name``."""
    path = BACKENDS.get(name)
    if path is None:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            if entry.name == name:
                path = entry.value
                break
    if path is None:
        raise DriverError(f"unknown hardware backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverError(
            f"the {name} backend cannot load ({exc}); install it with: pip install 'datas-agent[{name}]'"
        ) from None
    return getattr(module, class_name)


@dataclass
class Rig:
    """The devices the agent drives, possibly from different backends (e.g. an INDI mount and a Pi camera)."""

    camera: Camera
    mount: Mount | None = None
    filter_wheel: FilterWheel | None = None
    backends: list[Backend] = field(default_factory=list)

    def conditions(self) -> Conditions:
        """Combined safety: unsafe if any backend says so; weather from the first that has it."""
        is_safe: bool | None = None
        weather = None
        for backend in self.backends:
            reported = backend.conditions()
            if reported.is_safe is not None:
                is_safe = reported.is_safe if is_safe is None else (is_safe and reported.is_safe)
            weather = weather or reported.weather
        return Conditions(is_safe=is_safe, weather=weather)

    def close(self) -> None:
        for backend in self.backends:
            try:
                backend.close()
            except Exception as exc:  # closing must not hide the error that led here
                log.warning("closing the %s backend failed: %s", backend.name, exc)

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_rig(config: AgentConfig) -> Rig:
    """Connect every backend the configuration uses and return the rig of devices.

    Raises
    ------
    DriverError
        A backend is unknown, its library is missing, or its hardware cannot be reached.
    """
    hardware = config.hardware
    backends: dict[str, Backend] = {}
    devices: dict[str, object] = {}
    try:
        for role, device in hardware.devices.items():
            backend = backends.get(device.backend)
            if backend is None:
                cls = backend_class(device.backend)
                options = hardware.options.get(device.backend, {})
                try:
                    backend = cls(options, hardware, config.site)
                except (TypeError, ValueError) as exc:  # e.g. {width: abc}
                    raise DriverError(f"hardware.{device.backend}: an option has the wrong type ({exc}); "
                                      f"options given: {options}") from None
                backend.connect()
                backends[device.backend] = backend
            factory = {"mount": backend.mount, "camera": backend.camera, "filter_wheel": backend.filter_wheel}[role]
            try:
                devices[role] = factory(device.name)
            except NotImplementedError as exc:
                raise DriverError(f"hardware.devices.{role}: {exc}") from None
        rig = Rig(camera=devices["camera"], mount=devices.get("mount"), filter_wheel=devices.get("filter_wheel"),
                  backends=list(backends.values()))
        if rig.filter_wheel is not None and hardware.filters:
            available = rig.filter_wheel.names()
            missing = [name for name in hardware.filters if name not in available]
            if missing:
                raise DriverError(f"filter(s) {', '.join(missing)} from hardware.filters are not in the wheel "
                                  f"{rig.filter_wheel.name!r}, which has: {', '.join(available)}")
        return rig
    except BaseException:
        for backend in backends.values():
            with contextlib.suppress(Exception):  # the original error matters more
                backend.close()
        raise
