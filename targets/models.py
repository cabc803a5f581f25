"""Targets, their aliases, campaigns that group them, and alerts that create them."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from network.models import Network
from network.validators import (
    ERROR_RADIUS_VALIDATORS,
    MAGNITUDE_VALIDATORS,
    POSITIVE_WEIGHT_VALIDATORS,
    WEIGHT_VALIDATORS,
    parse_windows,
)

RA_VALIDATORS = [MinValueValidator(0), MaxValueValidator(360)]
DEC_VALIDATORS = [MinValueValidator(-90), MaxValueValidator(90)]


def name_key(name: str) -> str:
    """Normalised form under which names and aliases are unique and looked up.

    Case, spaces, underscores and hyphens are ignored: "M 31", "m31" and "M-31" are one name.
    """
    return re.sub(r"[\s_\-]+", "", name).casefold()


class TargetType(models.TextChoices):
    VARIABLE = "variable", "Variable star"
    EXOPLANET = "exoplanet", "Exoplanet transit"
    ASTEROID = "asteroid", "Asteroid"
    COMET = "comet", "Comet"
    TRANSIENT = "transient", "Transient"
    DEEP_SKY = "deep_sky", "Deep-sky object"
    STAR = "star", "Star / standard"
    MOSAIC_PANEL = "mosaic_panel", "Mosaic panel"
    OTHER = "other", "Other"


def validate_time_windows(value: object) -> None:
    """Time-critical windows: ``[{"start": ISO, "end": ISO, "priority_boost": float}]``."""
    for _, _, window in parse_windows(value, "time_windows"):
        boost = window.get("priority_boost", 0)
        if not isinstance(boost, (int, float)) or isinstance(boost, bool):
            raise ValidationError(f"time window {window!r}: priority_boost must be a number")


class Target(models.Model):
    """Something a network wants observed, at a fixed J2000 position."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="targets")
    name = models.CharField(max_length=120)
    name_key = models.CharField(max_length=120, editable=False)
    ra_deg = models.FloatField(validators=RA_VALIDATORS, help_text="Right ascension J2000, degrees [0, 360).")
    dec_deg = models.FloatField(validators=DEC_VALIDATORS, help_text="Declination J2000, degrees.")
    target_type = models.CharField(max_length=16, choices=TargetType.choices, default=TargetType.VARIABLE)
    magnitude = models.FloatField(null=True, blank=True, validators=MAGNITUDE_VALIDATORS,
                                  help_text="Typical V magnitude.")
    priority = models.FloatField(default=1.0, validators=POSITIVE_WEIGHT_VALIDATORS,
                                 help_text="Base priority; larger is more urgent.")
    cadence_hours = models.FloatField(null=True, blank=True, validators=POSITIVE_WEIGHT_VALIDATORS,
                                      help_text="Wanted time between observations, hours.")
    min_observations = models.PositiveIntegerField(default=1)
    # Observation requirements
    required_filters = models.JSONField(default=list, blank=True, help_text="Filter names wanted, e.g. ['V', 'B'].")
    exposure_sec = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.001), MaxValueValidator(1e6)],
                                     help_text="Exposure per frame, seconds.")
    total_hours = models.FloatField(null=True, blank=True, validators=POSITIVE_WEIGHT_VALIDATORS,
                                    help_text="Total time on target needed, hours.")
    time_windows = models.JSONField(default=list, blank=True, validators=[validate_time_windows],
                                    help_text='Time-critical windows [{"start", "end", "priority_boost"}] (UTC).')
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Coverage, maintained by targets.coverage on every new observation and nightly.
    total_observations = models.PositiveIntegerField(default=0, editable=False)
    unique_sites = models.PositiveIntegerField(default=0, editable=False)
    observations_last_7d = models.PositiveIntegerField(default=0, editable=False)
    last_observed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["network", "name_key"], name="target_unique_name_per_network"),
        ]
        indexes = [
            models.Index(fields=["network", "is_active", "priority"], name="target_active_priority_idx"),
            models.Index(fields=["network", "dec_deg"], name="target_network_dec_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = name_key(self.name)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.ra_deg is not None and not 0 <= self.ra_deg < 360:
            raise ValidationError({"ra_deg": "ra_deg must be in [0, 360) degrees"})


class TargetAlias(models.Model):
    """Another name of a target; names and aliases share one namespace per network."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+", editable=False)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=120)
    name_key = models.CharField(max_length=120, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "target aliases"
        constraints = [
            models.UniqueConstraint(fields=["network", "name_key"], name="alias_unique_name_per_network"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = name_key(self.name)
        self.network_id = self.target.network_id
        super().save(*args, **kwargs)


class CoveragePolicy(models.TextChoices):
    DIVERSE = "diverse", "Diverse (spread over sites)"
    REDUNDANT = "redundant", "Redundant (several sites at once)"


class Campaign(models.Model):
    """A set of targets observed together for one science goal."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    priority_boost = models.FloatField(default=0, validators=WEIGHT_VALIDATORS,
                                       help_text="Added to the priority of its targets.")
    is_active = models.BooleanField(default=True)
    coverage_policy = models.CharField(max_length=16, choices=CoveragePolicy.choices,
                                       default=CoveragePolicy.DIVERSE)
    coverage_sites = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="Diverse: distinct sites wanted per target. Redundant: sites observing at once.",
    )
    targets = models.ManyToManyField(Target, through="CampaignTarget", related_name="campaigns")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-is_active", "name"]
        constraints = [models.UniqueConstraint(fields=["network", "name"], name="campaign_unique_name_per_network")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "the campaign must end after it starts"})


class CampaignTarget(models.Model):
    """A target's place in a campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="campaign_memberships")
    priority_boost = models.FloatField(default=0, validators=WEIGHT_VALIDATORS,
                                       help_text="Extra boost for this target only.")
    added_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "target"], name="campaign_target_unique")]

    def __str__(self) -> str:
        return f"{self.target} in {self.campaign}"

    def clean(self) -> None:
        # A campaign being created in the same form (the admin's inline) has no id yet, but
        # its network is already chosen: check against that too, or another network's target
        # slips into the new campaign.
        campaign_field = self._meta.get_field("campaign")
        campaign = self.campaign if self.campaign_id or campaign_field.is_cached(self) else None
        if campaign is not None and self.target_id and campaign.network_id != self.target.network_id:
            raise ValidationError({"target": "the target belongs to another network"})


class AlertSource(models.TextChoices):
    ZTF = "ZTF", "ZTF"
    LSST = "LSST", "Rubin/LSST"
    GAIA = "Gaia", "Gaia"
    GCN = "GCN", "GCN"
    TNS = "TNS", "TNS"
    ASASSN = "ASAS-SN", "ASAS-SN"
    ATLAS = "ATLAS", "ATLAS"
    MPC = "MPC", "MPC"
    OTHER = "other", "Other"


class AlertStatus(models.TextChoices):
    NEW = "new", "New (not checked against rules)"
    MATCHED = "matched", "Matched (linked to a target)"
    IGNORED = "ignored", "Ignored (no rule matched)"
    RETRACTED = "retracted", "Retracted"


class Alert(models.Model):
    """A notice from an alert stream, linked to the target it concerns once matched."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="alerts")
    source = models.CharField(max_length=16, choices=AlertSource.choices)
    external_id = models.CharField(max_length=120, help_text="The source's id for this alert.")
    ra_deg = models.FloatField(validators=RA_VALIDATORS)
    dec_deg = models.FloatField(validators=DEC_VALIDATORS)
    error_radius_arcsec = models.FloatField(default=1.0, validators=ERROR_RADIUS_VALIDATORS)
    alert_type = models.CharField(max_length=40, blank=True, help_text="e.g. supernova, grb, nova, microlensing.")
    priority = models.FloatField(default=1.0, validators=WEIGHT_VALIDATORS)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    # Set by the rules (targets.alerts): the event several notices share, and the verdict.
    event_id = models.CharField(max_length=120, blank=True,
                                help_text="The event the notice is about (ZTF objectId, GCN mission:trigger).")
    event_time = models.DateTimeField(null=True, blank=True, help_text="When the event happened (UTC).")
    magnitude = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.NEW)
    rule = models.ForeignKey("targets.AlertRule", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="alerts", help_text="The rule that matched.")
    rule_report = models.JSONField(default=list, blank=True,
                                   help_text="Each rule's verdict: [{rule, name, matched, reasons}].")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["network", "source", "external_id"], name="alert_unique_per_source"),
        ]
        indexes = [models.Index(fields=["network", "source", "event_id"], name="alert_event_idx")]

    def __str__(self) -> str:
        return f"{self.source} {self.external_id}"


def observation_model():
    """The model of the observations made of targets (``observations.Observation``), found through
    its foreign key to :class:`Target` so that targets/ imports nothing of observations/."""
    return Target._meta.get_field("observations").related_model


# Alert rules, survey photometry and feed health live in targets/alerts/ (models of this app).
from targets.alerts.models import AlertFeed, AlertRule, SurveyPhotometry  # noqa: E402

__all__ = ["Alert", "AlertFeed", "AlertRule", "AlertSource", "AlertStatus", "Campaign", "CampaignTarget",
           "SurveyPhotometry", "Target", "TargetAlias", "TargetType"]
