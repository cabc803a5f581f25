"""Telescope sites and the API keys their agents use."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as django_timezone

from network.models import Network
from network.validators import MAGNITUDE_VALIDATORS, validate_availability


class MountType(models.TextChoices):
    GERMAN_EQUATORIAL = "german_equatorial", "German equatorial"
    FORK_EQUATORIAL = "fork_equatorial", "Fork equatorial"
    ALT_AZ = "alt_az", "Alt-az"
    FIXED = "fixed", "Fixed / transit"
    OTHER = "other", "Other"


class Automation(models.TextChoices):
    MANUAL = "manual", "Manual"
    SEMI_AUTO = "semi_auto", "Semi-automatic"
    ROBOTIC = "robotic", "Robotic"


class SiteStatus(models.TextChoices):
    """What the agent last said it was doing."""

    UNKNOWN = "unknown", "Unknown"
    IDLE = "idle", "Idle"
    OBSERVING = "observing", "Observing"
    PARKED = "parked", "Parked"
    CLOSED = "closed", "Closed (weather)"
    ERROR = "error", "Error"


class Weather(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    CLEAR = "clear", "Clear"
    PARTLY_CLOUDY = "partly_cloudy", "Partly cloudy"
    CLOUDY = "cloudy", "Cloudy"
    RAIN = "rain", "Rain"
    WIND = "wind", "Too windy"
    HUMID = "humid", "Too humid"


def validate_timezone_name(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long for a file
        raise ValidationError(f"{value!r} is not an IANA time zone name (e.g. 'Europe/Madrid')") from exc


def validate_horizon(value: object) -> None:
    """A horizon profile is a list of ``[azimuth_deg, min_altitude_deg]`` pairs."""
    if not isinstance(value, list):
        raise ValidationError("horizon must be a list of [azimuth_deg, min_altitude_deg] pairs")
    for point in value:
        if not (isinstance(point, (list, tuple)) and len(point) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            raise ValidationError(f"horizon point {point!r} is not [azimuth_deg, min_altitude_deg]")
        azimuth, altitude = point
        if not 0 <= azimuth <= 360:
            raise ValidationError(f"horizon azimuth {azimuth} is outside [0, 360] degrees")
        if not -90 <= altitude <= 90:
            raise ValidationError(f"horizon altitude {altitude} is outside [-90, 90] degrees")


def validate_filter_names(value: object) -> None:
    if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)):
        raise ValidationError("filters must be a list of non-empty filter names as the wheel reports them")
    if len(set(value)) != len(value):
        raise ValidationError("filter names must be unique")


def validate_below_zenith(value: float) -> None:
    """The altitude floor must leave some sky: at 90 degrees nothing is ever observable."""
    if value >= 90:
        raise ValidationError(f"min_altitude_deg {value} leaves no sky: it must be below 90 degrees")


def validate_hour_angle_limits(east: float | None, west: float | None) -> None:
    """The east limit must come before the west one: ``-12 <= east < west <= 12`` hours.

    An unset limit is the full half-range (-12 east, +12 west), as the scheduler reads it.
    """
    east_h = -12.0 if east is None else east
    west_h = 12.0 if west is None else west
    if not east_h < west_h:
        raise ValidationError({"ha_limit_west_h": f"the hour-angle limits east {east_h} h and west {west_h} h "
                                                  "leave no sky: east must be below west"})


EAST_HOUR_ANGLE_VALIDATORS = [MinValueValidator(-12), MaxValueValidator(0)]
WEST_HOUR_ANGLE_VALIDATORS = [MinValueValidator(0), MaxValueValidator(12)]


class Site(models.Model):
    """One telescope (optical tube + camera + mount) at one place, run by one observer."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="sites")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=120)
    # Geography
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)],
                                 help_text="Geodetic latitude, degrees north.")
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)],
                                  help_text="Longitude, degrees east.")
    elevation_m = models.FloatField(default=0, validators=[MinValueValidator(-500), MaxValueValidator(9000)],
                                    help_text="Height above sea level, metres.")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone_name],
                                help_text="IANA time zone name, e.g. 'Europe/Madrid'.")
    # Equipment
    aperture_mm = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(50_000)])
    focal_length_mm = models.FloatField(null=True, blank=True,
                                        validators=[MinValueValidator(1), MaxValueValidator(1_000_000)])
    pixel_size_um = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.1), MaxValueValidator(1000)])
    camera_model = models.CharField(max_length=120, blank=True)
    filters = models.JSONField(default=list, blank=True, validators=[validate_filter_names],
                               help_text="Filter names exactly as the filter wheel reports them.")
    fov_arcmin = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(21_600)],
                                   help_text="Field of view (longer side), arcmin.")
    limiting_mag = models.FloatField(null=True, blank=True, validators=MAGNITUDE_VALIDATORS,
                                     help_text="Typical limiting magnitude.")
    mount_type = models.CharField(max_length=24, choices=MountType.choices, default=MountType.GERMAN_EQUATORIAL)
    automation = models.CharField(max_length=16, choices=Automation.choices, default=Automation.MANUAL)
    # Limits and availability (read by the scheduler)
    horizon = models.JSONField(default=list, blank=True, validators=[validate_horizon],
                               help_text="[[azimuth_deg, min_altitude_deg], ...]; empty = flat horizon.")
    min_altitude_deg = models.FloatField(default=20, validators=[MinValueValidator(0), validate_below_zenith],
                                         help_text="Altitude floor wherever the profile is lower.")
    ha_limit_east_h = models.FloatField(null=True, blank=True, validators=EAST_HOUR_ANGLE_VALIDATORS,
                                        help_text="Most negative hour angle, hours, in [-12, 0].")
    ha_limit_west_h = models.FloatField(null=True, blank=True, validators=WEST_HOUR_ANGLE_VALIDATORS,
                                        help_text="Most positive hour angle, hours, in [0, 12].")
    availability = models.JSONField(
        default=list, blank=True, validators=[validate_availability],
        help_text='Windows the site may be scheduled: [{"start": ISO-8601, "end": ISO-8601}] '
                  "(UTC); empty = every night.",
    )
    # State reported by the agent
    status = models.CharField(max_length=16, choices=SiteStatus.choices, default=SiteStatus.UNKNOWN)
    weather_status = models.CharField(max_length=16, choices=Weather.choices, default=Weather.UNKNOWN)
    weather = models.JSONField(default=dict, blank=True, help_text="Last weather readings from the agent.")
    weather_reported_at = models.DateTimeField(null=True, blank=True)
    reliability = models.FloatField(default=0.5, validators=[MinValueValidator(0), MaxValueValidator(1)],
                                    help_text="0..1: share of scheduled work the site delivered.")
    is_active = models.BooleanField(default=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)

    class Meta:
        ordering = ["network", "name"]
        constraints = [models.UniqueConstraint(fields=["network", "name"], name="site_unique_name_per_network")]
        indexes = [models.Index(fields=["network", "is_active"], name="site_network_active_idx")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        validate_hour_angle_limits(self.ha_limit_east_h, self.ha_limit_west_h)

    @property
    def is_online(self) -> bool:
        """True when the agent checked in within ``DATAS_SITE_ONLINE_SECONDS``."""
        if self.last_seen is None:
            return False
        window = timedelta(seconds=settings.DATAS_SITE_ONLINE_SECONDS)
        return django_timezone.now() - self.last_seen <= window

    @property
    def pixel_scale_arcsec(self) -> float | None:
        """Plate scale in arcsec per pixel from pixel size and focal length."""
        if not (self.pixel_size_um and self.focal_length_mm):
            return None
        return 206.264806 * self.pixel_size_um / self.focal_length_mm


class SiteKey(models.Model):
    """An API key with which one site's agent authenticates; only its SHA-256 is stored."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="keys")
    # Copied from the site so tenant scoping never needs a join.
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="site_keys", editable=False)
    label = models.CharField(max_length=80, blank=True, help_text="What the key is for, e.g. 'observatory PC'.")
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=django_timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["site", "-created_at"]

    def __str__(self) -> str:
        return f"{self.site} key {self.lookup}"

    def save(self, *args, **kwargs) -> None:
        self.network_id = self.site.network_id
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
