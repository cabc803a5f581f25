"""What the scheduler reads and writes: plain dataclasses, no Django.

The portal turns its rows into these (``TargetSpec``, ``SiteSpec``, ``CampaignSpec``), the
scheduler returns a ``NetworkSchedule`` holding one ranked ``SiteSchedule`` per site. Times
are POSIX seconds (UTC), angles degrees, durations seconds unless a name says hours.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from datas_pipeline.sky.visibility import HorizonProfile, Observatory

POLICY_DIVERSE = "diverse"
POLICY_REDUNDANT = "redundant"
POLICIES = (POLICY_DIVERSE, POLICY_REDUNDANT)


class SchedulingError(ValueError):
    """An input the scheduler cannot use, with what to change."""


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign a target belongs to.

    ``policy`` is ``diverse`` (one site at a time, spread over sites) or ``redundant`` (``sites``
    sites at once, e.g. an occultation). A campaign counts only while active and inside its
    dates (``None`` = open-ended).
    """

    id: Hashable
    name: str = ""
    priority_boost: float = 1.0
    policy: str = POLICY_DIVERSE
    sites: int = 1
    active: bool = True
    starts_at: float | None = None
    ends_at: float | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise SchedulingError(f"campaign {self.name or self.id!r}: policy must be one of {POLICIES}")
        if self.sites < 1:
            raise SchedulingError(f"campaign {self.name or self.id!r}: needs at least 1 site, got {self.sites}")
        if self.priority_boost < 0:
            raise SchedulingError(f"campaign {self.name or self.id!r}: priority_boost must be >= 0")

    def is_running(self, now: float) -> bool:
        """True when active and ``now`` is inside the campaign dates."""
        return (self.active and (self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or now < self.ends_at))


@dataclass(frozen=True)
class TimeCriticalWindow:
    """An interval in which a target must be observed (a transit, an occultation, an eclipse).

    A target with such windows is only scheduled inside one of them; ``priority_boost``
    multiplies its score there.
    """

    start: float
    end: float
    priority_boost: float = 1.0

    def __post_init__(self) -> None:
        if not self.end > self.start:
            raise SchedulingError(f"a time-critical window must end after it starts ({self.start} >= {self.end})")


@dataclass(frozen=True)
class TargetSpec:
    """One target with what it still needs.

    Attributes
    ----------
    ra_deg, dec_deg : float
        ICRS/J2000 (degrees).
    priority : float
        >= 0; larger is more important (0: never scheduled).
    magnitude : float or None
        Brightness in the band that matters for detection.
    cadence_hours : float or None
        Wanted time between observations (network-wide); ``None`` = no cadence.
    last_observed_at : float or None
        Last observation anywhere in the network (POSIX s).
    min_observations, observations_total : int
        Goal and count so far.
    hours_needed, hours_observed : float
        Total open-shutter time wanted and done (hours).
    filters : tuple of str
        Filters wanted, by band name (``V``, ``R``, ``Ha``, ``L``...); empty = any.
    exposure_sec : float
        Exposure per frame (seconds).
    frames_per_visit : int or None
        Frames per filter per visit; ``None`` sizes a visit to ``SchedulerConfig.visit_minutes``.
    size_arcmin : float or None
        Extent the field of view must hold (nebula, mosaic panel); ``None`` = point source.
    recent_sites : mapping
        Site id -> observations there in the recent period (for geographic diversity).
    """

    id: Hashable
    name: str
    ra_deg: float
    dec_deg: float
    priority: float = 1.0
    magnitude: float | None = None
    target_type: str = ""
    cadence_hours: float | None = None
    last_observed_at: float | None = None
    min_observations: int = 0
    observations_total: int = 0
    hours_needed: float = 0.0
    hours_observed: float = 0.0
    filters: tuple[str, ...] = ()
    exposure_sec: float = 60.0
    frames_per_visit: int | None = None
    size_arcmin: float | None = None
    campaigns: tuple[CampaignSpec, ...] = ()
    time_critical: tuple[TimeCriticalWindow, ...] = ()
    recent_sites: Mapping[Hashable, int] = field(default_factory=dict)
    active: bool = True
    expires_at: float | None = None

    def __post_init__(self) -> None:
        label = self.name or self.id
        if not 0.0 <= self.ra_deg < 360.0:
            raise SchedulingError(f"target {label!r}: ra_deg {self.ra_deg} must be in [0, 360)")
        if not -90.0 <= self.dec_deg <= 90.0:
            raise SchedulingError(f"target {label!r}: dec_deg {self.dec_deg} must be in [-90, 90]")
        if not self.priority >= 0:
            raise SchedulingError(f"target {label!r}: priority must be >= 0, got {self.priority}")
        if self.exposure_sec <= 0:
            raise SchedulingError(f"target {label!r}: exposure_sec must be > 0, got {self.exposure_sec}")
        if self.cadence_hours is not None and self.cadence_hours <= 0:
            raise SchedulingError(f"target {label!r}: cadence_hours must be > 0 or None")


@dataclass(frozen=True)
class SiteSpec:
    """One site: where it is, what it can reach, what it carries, and whether it can observe now.

    ``weather`` is the last reported status (``clear``, ``cloudy``, ``rain``, ``unknown``...)
    and ``weather_reported_at`` when it was reported; a report older than
    ``weather_max_age_s``, or none at all, means nothing to do. ``availability`` lists the
    (start, end) POSIX intervals the site offers; ``None`` = whenever it is dark.
    """

    id: Hashable
    name: str
    latitude_deg: float
    longitude_deg: float
    elevation_m: float = 0.0
    filters: tuple[str, ...] = ()
    fov_arcmin: float | None = None
    limiting_mag: float | None = None
    min_altitude_deg: float = 20.0
    horizon: HorizonProfile | None = None
    ha_limits_hours: tuple[float, float] | None = None
    twilight: str = "nautical"
    min_moon_separation_deg: float = 0.0
    weather: str = "unknown"
    weather_reported_at: float | None = None
    weather_max_age_s: float = 1800.0
    reliability: float = 1.0
    availability: tuple[tuple[float, float], ...] | None = None
    is_active: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.reliability <= 1.0:
            raise SchedulingError(f"site {self.name!r}: reliability must be in [0, 1], got {self.reliability}")
        self.observatory  # noqa: B018 - validates latitude, limits and twilight now, not mid-pass

    @property
    def observatory(self) -> Observatory:
        """The site's geometry and pointing limits for the visibility maths."""
        return Observatory(self.latitude_deg, self.longitude_deg, self.elevation_m, self.min_altitude_deg,
                           self.horizon, self.ha_limits_hours, self.twilight, self.min_moon_separation_deg)


@dataclass(frozen=True)
class FilterStep:
    """Part of a visit: ``count`` frames of ``exposure_sec`` through ``filter`` (the site's own name)."""

    filter: str
    exposure_sec: float
    count: int


@dataclass(frozen=True)
class ScheduleEntry:
    """One line of a site's ranked list, and why it is there.

    ``terms`` holds every factor of the score (their product is ``score``). The window is
    when to observe: from the site's reference time until the target sets, reaches a limit,
    dawn comes or its time-critical window closes.
    """

    rank: int
    target_id: Hashable
    target_name: str
    score: float
    urgent: bool
    filter_plan: tuple[FilterStep, ...]
    window_start: float
    window_end: float
    best_time: float
    altitude_deg: float
    best_altitude_deg: float
    airmass: float
    moon_separation_deg: float
    terms: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 UTC)."""
        return {
            "rank": self.rank, "target_id": self.target_id, "target_name": self.target_name,
            "score": round(self.score, 6), "urgent": self.urgent,
            "filter_plan": [{"filter": s.filter, "exposure_sec": s.exposure_sec, "count": s.count}
                            for s in self.filter_plan],
            "window_start": iso(self.window_start), "window_end": iso(self.window_end),
            "best_time": iso(self.best_time), "altitude_deg": round(self.altitude_deg, 3),
            "best_altitude_deg": round(self.best_altitude_deg, 3), "airmass": round(self.airmass, 4),
            "moon_separation_deg": round(self.moon_separation_deg, 2),
            "terms": {k: round(v, 6) for k, v in self.terms.items()},
        }


@dataclass
class SiteSchedule:
    """A site's ranked list for one pass. ``reason`` says why it is empty, when it is."""

    site_id: Hashable
    site_name: str
    generated_at: float
    valid_until: float
    reference_time: float | None = None
    night: tuple[float, float] | None = None
    entries: list[ScheduleEntry] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 UTC)."""
        return {
            "site_id": self.site_id, "site_name": self.site_name,
            "generated_at": iso(self.generated_at), "valid_until": iso(self.valid_until),
            "reference_time": iso(self.reference_time),
            "night": None if self.night is None else [iso(self.night[0]), iso(self.night[1])],
            "reason": self.reason, "entries": [e.as_dict() for e in self.entries],
        }


@dataclass
class NetworkSchedule:
    """Every site's list from one pass, and figures about the pass."""

    generated_at: float
    valid_until: float
    sites: dict[Hashable, SiteSchedule]
    stats: dict[str, float] = field(default_factory=dict)

    def assignments(self) -> dict[Hashable, list[Hashable]]:
        """Target id -> the sites it was given to."""
        out: dict[Hashable, list[Hashable]] = {}
        for site_id, schedule in self.sites.items():
            for entry in schedule.entries:
                out.setdefault(entry.target_id, []).append(site_id)
        return out


def iso(unix_s: float | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, to the second."""
    if unix_s is None:
        return None
    return dt.datetime.fromtimestamp(round(unix_s), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
