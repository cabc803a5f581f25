"""What the sites observed: one row per measurement the agent reports."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from network.models import Network
from sites.models import Site, SiteKey
from targets.models import DEC_VALIDATORS, RA_VALIDATORS, Target


class PositionSource(models.TextChoices):
    ASTROMETRY = "astrometry", "Measured (astrometry)"
    TARGET = "target", "Target's catalogue position"


class Observation(models.Model):
    """One observation of a target from one site, with its photometry and astrometry.

    ``observation_id`` is chosen by the client (a UUID), which makes uploads idempotent: an
    agent that retries after a lost response gets the stored record back.
    """

    observation_id = models.UUIDField(unique=True, help_text="Client-chosen UUID; retries reuse it.")
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="observations")
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="observations")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="observations")
    observed_at = models.DateTimeField(help_text="Mid-exposure time, UTC.")
    exposure_sec = models.FloatField(validators=[MinValueValidator(0)])
    filter = models.CharField(max_length=32, help_text="Filter name as the site's wheel reports it.")
    airmass = models.FloatField(null=True, blank=True, validators=[MinValueValidator(1)])
    seeing_arcsec = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    # Photometry
    magnitude = models.FloatField(null=True, blank=True)
    magnitude_error = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    comparison_stars = models.JSONField(default=list, blank=True,
                                        help_text="Comparison/check stars used: [{name, magnitude, ...}].")
    photometry_method = models.CharField(max_length=32, blank=True, help_text="aperture, psf, ensemble, ...")
    # Position of the measurement: measured astrometry when given, else the target's position,
    # so every observation can be found by cone search through the Q3C index.
    ra_deg = models.FloatField(validators=RA_VALIDATORS)
    dec_deg = models.FloatField(validators=DEC_VALIDATORS)
    position_source = models.CharField(max_length=16, choices=PositionSource.choices,
                                       default=PositionSource.TARGET)
    astrometry_error_arcsec = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    quality_flags = models.JSONField(default=list, blank=True, help_text="e.g. ['saturated', 'clouds'].")
    fits_header = models.JSONField(default=dict, blank=True)
    # Where the image lives in the file store (MEDIA_ROOT or S3); the ingest issue adds Frame.
    image_ref = models.CharField(max_length=500, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    submitted_with_key = models.ForeignKey(SiteKey, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-observed_at"]
        indexes = [
            models.Index(fields=["target", "observed_at"], name="obs_target_time_idx"),
            models.Index(fields=["site", "observed_at"], name="obs_site_time_idx"),
            models.Index(fields=["network", "observed_at"], name="obs_network_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.target} from {self.site} at {self.observed_at:%Y-%m-%d %H:%M}"


from observations.archive.models import ArchiveFile, ArchiveShare  # noqa: E402,F401
from observations.frames import Frame, FrameUpload, TargetPipelineStatus  # noqa: E402,F401  (in their own module)
from observations.mover_models import MoverCandidate, MoverSearch  # noqa: E402,F401  (in their own module)
