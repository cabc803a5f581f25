"""Rules that turn alerts into targets, the survey photometry alerts carry, and feed health.

Imported by :mod:`targets.models`, so these are models of the ``targets`` app.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from network.models import Network
from network.validators import MAGNITUDE_VALIDATORS, POSITIVE_WEIGHT_VALIDATORS, WEIGHT_VALIDATORS
from targets.models import DEC_VALIDATORS, Campaign, Target


def validate_name_list(value: object) -> None:
    if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)):
        raise ValidationError("give a list of non-empty names, e.g. [\"ZTF\", \"GCN\"]")


class AlertRule(models.Model):
    """Which alerts become targets for a network, and how the new target is scheduled.

    Every condition left empty accepts everything. Rules are tried in ``position`` order and
    the first whose conditions all hold wins; the alert records every rule's verdict.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried in increasing position.")
    # What the alert must be
    sources = models.JSONField(default=list, blank=True, validators=[validate_name_list],
                               help_text='Alert sources, e.g. ["ZTF", "GCN"]; empty = any.')
    alert_types = models.JSONField(default=list, blank=True, validators=[validate_name_list],
                                   help_text='Alert types, e.g. ["grb", "transient"]; empty = any.')
    classifications = models.JSONField(default=list, blank=True, validators=[validate_name_list],
                                       help_text='Accepted classes, e.g. ["GRB", "SN Ia"]; empty = any.')
    min_classification_score = models.FloatField(null=True, blank=True,
                                                  validators=[MinValueValidator(0), MaxValueValidator(1)],
                                                  help_text="Lowest probability of an accepted class, 0..1.")
    min_real_bogus = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)],
                                       help_text="Lowest real/bogus score (ZTF drb, else rb), 0..1.")
    mag_min = models.FloatField(null=True, blank=True, validators=MAGNITUDE_VALIDATORS,
                                help_text="Brightest magnitude accepted.")
    mag_max = models.FloatField(null=True, blank=True, validators=MAGNITUDE_VALIDATORS,
                                help_text="Faintest magnitude accepted.")
    max_error_radius_deg = models.FloatField(null=True, blank=True,
                                             validators=[MinValueValidator(0), MaxValueValidator(180)],
                                             help_text="Largest error radius accepted, degrees.")
    # Where it must be
    dec_min = models.FloatField(null=True, blank=True, validators=DEC_VALIDATORS, help_text="Degrees.")
    dec_max = models.FloatField(null=True, blank=True, validators=DEC_VALIDATORS, help_text="Degrees.")
    min_abs_galactic_latitude = models.FloatField(null=True, blank=True,
                                                  validators=[MinValueValidator(0), MaxValueValidator(90)],
                                                  help_text="Keep away from the plane: |b| at least this, degrees.")
    min_sites = models.PositiveIntegerField(default=0, help_text="Observable from at least this many active sites...")
    within_hours = models.FloatField(default=24.0, validators=[MinValueValidator(0.1), MaxValueValidator(24 * 14)],
                                     help_text="...within this many hours of the alert's arrival.")
    # What the new target gets
    target_priority = models.FloatField(default=5.0, validators=POSITIVE_WEIGHT_VALIDATORS)
    target_cadence_hours = models.FloatField(null=True, blank=True, validators=POSITIVE_WEIGHT_VALIDATORS)
    time_critical_hours = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01), MaxValueValidator(24 * 365)],
        help_text="Hours after the event during which the target is time-critical (an urgent alert).")
    time_critical_boost = models.FloatField(default=10.0, validators=WEIGHT_VALIDATORS,
                                            help_text="Added to the priority inside the time-critical window.")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text="Campaign the new targets join.")
    campaign_name = models.CharField(max_length=120, blank=True,
                                     help_text="Or a campaign to join or create, e.g. 'Follow-up {event}'.")
    tile_large_regions = models.BooleanField(
        default=True, help_text="Cover an error region larger than the fields of view with ranked tiles.")
    max_tiles = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1), MaxValueValidator(5000)])
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["network", "position", "pk"]
        constraints = [models.UniqueConstraint(fields=["network", "name"], name="alert_rule_unique_name")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.mag_min is not None and self.mag_max is not None and self.mag_min > self.mag_max:
            raise ValidationError({"mag_max": "mag_max must be fainter (larger) than mag_min"})
        if self.dec_min is not None and self.dec_max is not None and self.dec_min > self.dec_max:
            raise ValidationError({"dec_max": "dec_max must be north of dec_min"})
        if self.campaign_id and self.campaign.network_id != self.network_id:
            raise ValidationError({"campaign": "the campaign belongs to another network"})


class SurveyPhotometry(models.Model):
    """A survey's measurement of a target (e.g. ZTF's PSF-fit difference magnitudes).

    Upper limits have no magnitude and carry ``limiting_mag``. Kept beside the network's own
    observations so a light curve shows both.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="survey_photometry")
    source = models.CharField(max_length=16)
    point_id = models.CharField(max_length=64, help_text="The survey's id of the measurement (ZTF candid).")
    observed_at = models.DateTimeField()
    jd = models.FloatField(help_text="Julian date (UTC) of mid-exposure.")
    band = models.CharField(max_length=16, help_text="Survey filter, e.g. ztf-g, ztf-r, ztf-i.")
    magnitude = models.FloatField(null=True, blank=True)
    magnitude_error = models.FloatField(null=True, blank=True)
    limiting_mag = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["target", "jd"]
        verbose_name_plural = "survey photometry"
        constraints = [models.UniqueConstraint(fields=["target", "source", "point_id"],
                                               name="survey_photometry_unique_point")]
        indexes = [models.Index(fields=["target", "jd"], name="survey_phot_target_jd_idx")]

    def __str__(self) -> str:
        return f"{self.source} {self.band} {self.magnitude} at JD {self.jd}"


class AlertFeed(models.Model):
    """One stream or poll, with where it got to and its health (shown in the portal and API)."""

    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=8, choices=[("stream", "Kafka stream"), ("poll", "HTTP poll")])
    source = models.CharField(max_length=32, help_text="Name of the source class in the registry.")
    cursor = models.CharField(max_length=120, blank=True, help_text="Where an incremental poll got to.")
    status = models.CharField(max_length=16, default="idle")
    messages = models.BigIntegerField(default=0)
    alerts = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    restarts = models.PositiveIntegerField(default=0)
    lag = models.BigIntegerField(null=True, blank=True, help_text="Messages not yet read (streams).")
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def status_line(self) -> str:
        """Name, kind, state, last message and lag: facts of the feed, no network's data."""
        last = self.last_message_at.strftime("%Y-%m-%d %H:%M:%S UTC") if self.last_message_at else "never"
        lag = "?" if self.lag is None else str(self.lag)
        return f"{self.name} [{self.kind} {self.source}] {self.status}: last message {last}, lag {lag}"

    def health_line(self) -> str:
        """`status_line` plus the counts and last error, which mix every network's traffic."""
        error = f" | last error: {self.last_error[:120]}" if self.last_error else ""
        return (f"{self.status_line()}, {self.messages} messages, {self.alerts} alerts, {self.skipped} skipped, "
                f"{self.restarts} restarts{error}")
