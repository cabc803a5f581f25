"""The agent's configuration: one YAML file (INI accepted), validated at start.

Every problem in the file is reported at once, each with its dotted key and what to write
instead, so a site operator fixes the file in one pass. The example written by
``datas-agent init`` (``example_config.yaml``) documents every key.
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from datas_agent.errors import ConfigError

BACKENDS = ("simulator", "indi", "alpaca", "picamera")
DEVICE_ROLES = ("mount", "camera", "filter_wheel")
API_KEY_ENV = "DATAS_AGENT_API_KEY"


@dataclass(frozen=True)
class ServerConfig:
    url: str
    site_id: str
    api_key: str = field(repr=False)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class SiteConfig:
    """Where the telescope is: WGS84 degrees (east positive) and metres above sea level."""

    latitude_deg: float
    longitude_deg: float
    elevation_m: float = 0.0
    # (azimuth_deg, minimum_altitude_deg) points, sorted by azimuth; empty means a flat horizon.
    horizon: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class DeviceConfig:
    role: str
    backend: str
    name: str | None = None


@dataclass(frozen=True)
class HardwareConfig:
    backend: str
    devices: dict[str, DeviceConfig]
    filters: tuple[str, ...] = ()
    # Per-backend connection options (``indi: {host, port}``, ``alpaca: {address}``...).
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    telescope_name: str = "DATAS telescope"
    focal_length_mm: float | None = None
    aperture_mm: float | None = None
    pixel_size_um: float | None = None

    @property
    def pixel_scale_arcsec(self) -> float | None:
        """Plate scale in arcsec per (unbinned) pixel, when focal length and pixel size are known."""
        if self.focal_length_mm and self.pixel_size_um:
            return 206.264806 * self.pixel_size_um / self.focal_length_mm
        return None


@dataclass(frozen=True)
class SafetyConfig:
    min_altitude_deg: float = 20.0
    max_sun_altitude_deg: float = -12.0
    max_airmass: float | None = None
    # (east, west) hour-angle limits in hours, as the portal's site record holds them; None: none.
    hour_angle_limits_h: tuple[float, float] | None = None
    # Closest approach to the Moon while it is up (degrees), as the portal's scheduler applies it.
    min_moon_separation_deg: float = 0.0


@dataclass(frozen=True)
class LiveStackConfig:
    """The running agent's live view (``datas_agent.livestack``); off unless enabled."""

    enabled: bool = False
    preview_every: int = 5
    directory: Path | None = None  # default DATA_DIR/livestack
    save_fits: bool = False
    max_stacks: int = 2


@dataclass(frozen=True)
class AgentConfig:
    path: Path
    server: ServerConfig
    site: SiteConfig
    hardware: HardwareConfig
    safety: SafetyConfig
    data_dir: Path
    poll_interval_s: float = 60.0
    targets_per_poll: int = 10
    default_exposure_s: float = 30.0
    upload_frames: bool = False
    log_level: str = "INFO"
    livestack: LiveStackConfig = field(default_factory=LiveStackConfig)

    @property
    def livestack_dir(self) -> Path:
        return self.livestack.directory or self.data_dir / "livestack"

    @property
    def queue_path(self) -> Path:
        return self.data_dir / "queue.sqlite3"

    @property
    def frames_dir(self) -> Path:
        return self.data_dir / "frames"


class _Checker:
    """Collects every problem with its dotted key instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def section(self, raw: dict, key: str, required: bool = False) -> dict:
        value = raw.get(key)
        if value is None:
            if required:
                self.problems.append(f"{key}: missing section")
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"{key}: expected a mapping of keys, got {type(value).__name__}")
            return {}
        return value

    def value(
        self,
        raw: dict,
        prefix: str,
        key: str,
        kind: type,
        default: Any = None,
        required: bool = False,
        low: float | None = None,
        high: float | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> Any:
        name = f"{prefix}.{key}" if prefix else key
        value = raw.get(key)
        if value is None or value == "":
            if required:
                self.problems.append(f"{name}: required")
            return default
        try:
            if kind is bool:
                value = _as_bool(value)
            elif kind in (int, float):
                if isinstance(value, bool):
                    raise ValueError(value)
                value = kind(value)
            elif kind is str:
                if isinstance(value, dict | list):
                    raise ValueError(value)
                value = str(value)
            elif kind is list:
                value = _as_list(value)
        except (TypeError, ValueError):
            self.problems.append(f"{name}: expected {kind.__name__}, got {value!r}")
            return default
        if low is not None and value < low:
            self.problems.append(f"{name}: {value} is below the minimum {low}")
        if high is not None and value > high:
            self.problems.append(f"{name}: {value} is above the maximum {high}")
        if choices is not None and value not in choices:
            self.problems.append(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(value)


def _as_list(value: Any) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    raise ValueError(value)


def read_raw(path: Path) -> dict:
    """Parse the file (YAML, or INI for ``.ini``/``.cfg``) into nested dictionaries."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (write an example with `datas-agent init {path}`)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if path.suffix.lower() in (".ini", ".cfg", ".conf"):
        return _read_ini(path, text)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return raw


def _read_ini(path: Path, text: str) -> dict:
    """INI sections map to YAML sections; ``[hardware.indi]`` nests; values are read as YAML scalars."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not valid INI: {exc}") from None
    raw: dict = {}
    for section in parser.sections():
        node = raw
        for part in section.split("."):
            node = node.setdefault(part, {})
        for key, value in parser.items(section):
            try:
                node[key] = yaml.safe_load(value) if value.strip() else None
            except yaml.YAMLError:
                node[key] = value
    # Top-level scalars live in an [agent] section in INI files.
    raw.update(raw.pop("agent", {}))
    return raw


def _read_api_key(server: dict, check: _Checker, base: Path) -> str:
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV].strip()
    key = server.get("api_key")
    key_file = server.get("api_key_file")
    if key and key_file:
        check.problems.append("server: give api_key or api_key_file, not both")
    if key_file:
        key_path = (base / str(key_file)).expanduser()
        try:
            key = key_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            check.problems.append(f"server.api_key_file: cannot read {key_path} ({exc.strerror})")
            return ""
        if not key:
            check.problems.append(f"server.api_key_file: {key_path} is empty")
    if not key:
        if not key_file:
            check.problems.append(f"server.api_key: required (or api_key_file, or the {API_KEY_ENV} variable)")
        return ""
    return str(key).strip()


def _parse_horizon(raw: Any, check: _Checker) -> tuple[tuple[float, float], ...]:
    if raw in (None, "", []):
        return ()
    points: list[tuple[float, float]] = []
    items = raw.items() if isinstance(raw, dict) else raw
    try:
        for item in items:
            az, alt = (float(v) for v in item)
            if not (0.0 <= az <= 360.0 and -90.0 <= alt <= 90.0):
                raise ValueError(item)
            points.append((az, alt))
    except (TypeError, ValueError):
        check.problems.append(
            "site.horizon: expected [azimuth_deg, minimum_altitude_deg] pairs, e.g. [[0, 15], [90, 25]]"
        )
        return ()
    return tuple(sorted(points))


def _parse_hour_angle_limits(raw: Any, check: _Checker) -> tuple[float, float] | None:
    if raw in (None, "", []):
        return None
    try:
        east, west = (float(v) for v in (_as_list(raw) if isinstance(raw, str) else raw))
    except (TypeError, ValueError):
        check.problems.append("safety.hour_angle_limits_h: expected [east, west] in hours, e.g. [-4.5, 4.5]")
        return None
    return east, west


def _check_sky_limits(site: SiteConfig, safety: SafetyConfig, check: _Checker) -> None:
    """The horizon and limits must make a site the scheduler's rules accept (datas_pipeline.sky)."""
    from datas_pipeline.sky.visibility import HorizonProfile, Observatory, VisibilityError

    try:
        horizon = HorizonProfile.from_points(site.horizon) if site.horizon else None
        Observatory(site.latitude_deg, site.longitude_deg, site.elevation_m, min_altitude_deg=safety.min_altitude_deg,
                    horizon=horizon, ha_limits_hours=safety.hour_angle_limits_h,
                    min_moon_separation_deg=safety.min_moon_separation_deg,
                    max_sun_altitude_deg=safety.max_sun_altitude_deg)
    except VisibilityError as exc:
        check.problems.append(f"site/safety: {exc}")


def _parse_hardware(raw: dict, check: _Checker) -> HardwareConfig:
    hw = check.section(raw, "hardware", required=True)
    backend = check.value(hw, "hardware", "backend", str, default="simulator", required=True, choices=BACKENDS)
    devices_raw = check.section(hw, "devices")
    devices: dict[str, DeviceConfig] = {}
    for role in DEVICE_ROLES:
        entry = devices_raw.get(role)
        if isinstance(entry, dict):
            dev_backend = check.value(entry, f"hardware.devices.{role}", "backend", str, default=backend,
                                      choices=BACKENDS + ("none",))
            name = check.value(entry, f"hardware.devices.{role}", "name", str)
        elif entry is None or isinstance(entry, str | int):
            dev_backend, name = backend, (str(entry) if entry is not None else None)
        else:
            check.problems.append(f"hardware.devices.{role}: expected a device name or {{backend, name}}")
            continue
        if dev_backend != "none":
            devices[role] = DeviceConfig(role=role, backend=dev_backend, name=name)
    if "camera" not in devices:
        check.problems.append("hardware.devices.camera: a camera is required")
    filters = check.value(hw, "hardware", "filters", list, default=[])
    options = {name: hw[name] for name in BACKENDS if isinstance(hw.get(name), dict)}
    for name in BACKENDS:
        if name in hw and not isinstance(hw[name], dict):
            check.problems.append(f"hardware.{name}: expected a mapping of connection options")
    return HardwareConfig(
        backend=backend,
        devices=devices,
        filters=tuple(str(f) for f in filters),
        options=options,
        telescope_name=check.value(hw, "hardware", "telescope_name", str, default="DATAS telescope"),
        focal_length_mm=check.value(hw, "hardware", "focal_length_mm", float, low=1.0),
        aperture_mm=check.value(hw, "hardware", "aperture_mm", float, low=1.0),
        pixel_size_um=check.value(hw, "hardware", "pixel_size_um", float, low=0.1, high=100.0),
    )


def parse_config(raw: dict, path: Path) -> AgentConfig:
    """Validate parsed file contents; raise :class:`ConfigError` listing every problem."""
    check = _Checker()
    base = path.parent
    server = check.section(raw, "server", required=True)
    url = check.value(server, "server", "url", str, required=True)
    if url:
        try:
            parsed = urlparse(url)
            parsed.port  # noqa: B018 - raises on a malformed host or port
        except ValueError:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            check.problems.append(f"server.url: {url!r} is not an http(s) URL such as https://datas.example.org")
    site_id = check.value(server, "server", "site_id", str, required=True)
    api_key = _read_api_key(server, check, base) if server else ""
    timeout = check.value(server, "server", "timeout_s", float, default=30.0, low=1.0, high=600.0)

    site = check.section(raw, "site", required=True)
    site_config = SiteConfig(
        latitude_deg=check.value(site, "site", "latitude_deg", float, required=True, low=-90, high=90),
        longitude_deg=check.value(site, "site", "longitude_deg", float, required=True, low=-180, high=360),
        elevation_m=check.value(site, "site", "elevation_m", float, default=0.0, low=-500, high=9000),
        horizon=_parse_horizon(site.get("horizon"), check),
    )
    hardware = _parse_hardware(raw, check)
    safety = check.section(raw, "safety")
    safety_config = SafetyConfig(
        min_altitude_deg=check.value(safety, "safety", "min_altitude_deg", float, default=20.0, low=0, high=89),
        max_sun_altitude_deg=check.value(safety, "safety", "max_sun_altitude_deg", float, default=-12.0,
                                         low=-90, high=90),
        max_airmass=check.value(safety, "safety", "max_airmass", float, low=1.0),
        hour_angle_limits_h=_parse_hour_angle_limits(safety.get("hour_angle_limits_h"), check),
        min_moon_separation_deg=check.value(safety, "safety", "min_moon_separation_deg", float, default=0.0,
                                            low=0, high=180),
    )
    if not check.problems:  # missing or mistyped values are reported already
        _check_sky_limits(site_config, safety_config, check)
    data_dir = check.value(raw, "", "data_dir", str, default="datas-agent-data")
    live = check.section(raw, "livestack")
    live_dir = check.value(live, "livestack", "directory", str)
    livestack = LiveStackConfig(
        enabled=check.value(live, "livestack", "enabled", bool, default=False),
        preview_every=check.value(live, "livestack", "preview_every", int, default=5, low=1),
        directory=(base / Path(live_dir).expanduser()).resolve() if live_dir else None,
        save_fits=check.value(live, "livestack", "save_fits", bool, default=False),
        max_stacks=check.value(live, "livestack", "max_stacks", int, default=2, low=1, high=64),
    )
    config = AgentConfig(
        path=path,
        server=ServerConfig(url=(url or "").rstrip("/"), site_id=site_id or "", api_key=api_key,
                            timeout_s=timeout),
        site=site_config,
        hardware=hardware,
        safety=safety_config,
        data_dir=(base / Path(data_dir).expanduser()).resolve(),
        poll_interval_s=check.value(raw, "", "poll_interval_s", float, default=60.0, low=0.1, high=86400),
        targets_per_poll=check.value(raw, "", "targets_per_poll", int, default=10, low=1, high=1000),
        default_exposure_s=check.value(raw, "", "default_exposure_s", float, default=30.0, low=0.001),
        upload_frames=check.value(raw, "", "upload_frames", bool, default=False),
        log_level=check.value(raw, "", "log_level", str, default="INFO",
                              choices=("DEBUG", "INFO", "WARNING", "ERROR")),
        livestack=livestack,
    )
    known = {"server", "site", "hardware", "safety", "data_dir", "poll_interval_s", "targets_per_poll",
             "default_exposure_s", "upload_frames", "log_level", "livestack"}
    for key in sorted(set(raw) - known):
        check.problems.append(f"{key}: unknown setting (a typo? the known ones are in `datas-agent init`)")
    if check.problems:
        lines = "\n".join(f"  - {p}" for p in check.problems)
        raise ConfigError(f"{path}: {len(check.problems)} problem(s) in the configuration:\n{lines}")
    return config


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate the configuration file at ``path``."""
    path = Path(path).expanduser().resolve()
    return parse_config(read_raw(path), path)


def example_config_text() -> str:
    """The commented example configuration that ``datas-agent init`` writes."""
    return (Path(__file__).parent / "example_config.yaml").read_text(encoding="utf-8")
