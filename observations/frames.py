"""FITS frames: every uploaded or catalogued image, and what the pipeline learned from it.

A frame is stored once per network (unique on its SHA-256), in the frame storage (the local
disk or S3, see observations.storage) under a content-addressed key. The pipeline
(observations.stages, run by the Celery chain in observations.tasks) fills in the rest: the
normalised header, the WCS and footprint, grades and flags, the calibration masters chosen,
the photometry, and the observation it produced. ``state`` follows observations.states.

The sky position is the centre of the solved WCS. On PostgreSQL a Q3C index covers it (see
the migration), so a cone search over frames is one indexed query through
``targets.sky.cone_search``.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from network.models import Network
from observations.models import Observation
from observations.states import FrameState
from sites.models import Site, SiteKey
from targets.models import DEC_VALIDATORS, RA_VALIDATORS, Target


class ImageType(models.TextChoices):
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"
    FLAT = "flat", "Flat"
    BIAS = "bias", "Bias"


class WcsSource(models.TextChoices):
    SOLVED = "solved", "Plate solved"
    PROPAGATED = "propagated", "Propagated from a solved frame of the same pointing"
    HEADER = "header", "Solved at the site (PLTSOLVD in the header)"


class Frame(models.Model):
    """One FITS image of a site, with its header, astrometry, quality and pipeline state."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="frames")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="frames")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="frames")
    observation = models.ForeignKey(Observation, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="frames")
    # The file
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file as uploaded (hex).")
    size_bytes = models.BigIntegerField(validators=[MinValueValidator(0)])
    storage_key = models.CharField(max_length=500, help_text="Key in the frame storage (disk or S3).")
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True, help_text="Pixels along x (NAXIS1).")
    height = models.PositiveIntegerField(null=True, blank=True, help_text="Pixels along y (NAXIS2).")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    uploaded_with_key = models.ForeignKey(SiteKey, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now, editable=False)
    # What the header says (datas_pipeline.io.headers.FrameHeader.as_dict(), issues included)
    image_type = models.CharField(max_length=8, choices=ImageType.choices, blank=True)
    is_master = models.BooleanField(default=False, help_text="A combined calibration master (bias, dark, flat).")
    observed_at = models.DateTimeField(null=True, blank=True, help_text="Mid-exposure, UTC.")
    exposure_s = models.FloatField(null=True, blank=True)
    filter = models.CharField(max_length=32, blank=True)
    header = models.JSONField(default=dict, blank=True, help_text="The normalised header record.")
    fits_header = models.JSONField(default=list, blank=True, help_text="The header as written: [[key, value, comment], ...].")
    # Astrometry: centre, corners, scale and orientation of the WCS
    ra_deg = models.FloatField(null=True, blank=True, validators=RA_VALIDATORS, help_text="WCS centre, degrees.")
    dec_deg = models.FloatField(null=True, blank=True, validators=DEC_VALIDATORS)
    footprint = models.JSONField(default=list, blank=True, help_text="Corners [[ra, dec], ...] in degrees.")
    pixel_scale_arcsec = models.FloatField(null=True, blank=True)
    rotation_deg = models.FloatField(null=True, blank=True, help_text="Position angle of +y, east of north.")
    flipped = models.BooleanField(null=True, blank=True)
    wcs_source = models.CharField(max_length=12, choices=WcsSource.choices, blank=True)
    wcs_header = models.JSONField(default=dict, blank=True, help_text="The WCS as FITS keywords.")
    wcs_reference = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                      help_text="The solved frame this WCS was propagated from.")
    astrometry = models.JSONField(default=dict, blank=True, help_text="Solver, matched stars, residuals.")
    reference_stars = models.JSONField(default=list, blank=True,
                                       help_text="Brightest star positions [[x, y], ...] for WCS propagation.")
    # Quality
    quality = models.JSONField(default=dict, blank=True, help_text="Grading measures and decision.")
    accepted = models.BooleanField(null=True, blank=True)
    quality_flags = models.JSONField(default=list, blank=True)
    fwhm_arcsec = models.FloatField(null=True, blank=True)
    # Products
    calibration = models.JSONField(default=dict, blank=True, help_text="Masters chosen and refused, per kind.")
    photometry = models.JSONField(default=dict, blank=True)
    preview_key = models.CharField(max_length=500, blank=True)
    thumbnail_key = models.CharField(max_length=500, blank=True)
    # Pipeline (transitions only through observations.states)
    state = models.CharField(max_length=24, choices=FrameState.choices, default=FrameState.RECEIVED)
    state_reason = models.TextField(blank=True, help_text="Why the frame failed.")
    state_changed_at = models.DateTimeField(default=timezone.now)
    active_stage = models.CharField(max_length=16, blank=True, help_text="The stage running now, if any.")
    active_since = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Stage runs started, retries included.")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent per stage.")
    notes = models.JSONField(default=dict, blank=True, help_text="Per stage: why it was skipped, caveats.")

    class Meta:
        ordering = ["-observed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["network", "sha256"], name="frame_unique_content_per_network"),
        ]
        indexes = [
            models.Index(fields=["network", "observed_at"], name="frame_network_time_idx"),
            models.Index(fields=["target", "observed_at"], name="frame_target_time_idx"),
            models.Index(fields=["site", "observed_at"], name="frame_site_time_idx"),
            models.Index(fields=["network", "state"], name="frame_network_state_idx"),
            # The portal's newest arrivals and its week of data quality read by upload time.
            models.Index(fields=["network", "uploaded_at"], name="frame_network_upload_idx"),
        ]

    def __str__(self) -> str:
        name = self.original_name or self.sha256[:12]
        return f"{name} ({self.image_type or 'frame'}, {self.state})"


class UploadState(models.TextChoices):
    PENDING = "pending", "Waiting for the file"
    COMPLETED = "completed", "Stored as a frame"
    REJECTED = "rejected", "Rejected"


class FrameUpload(models.Model):
    """A pre-signed upload to S3: granted first, turned into a `Frame` once the file checks out.

    The client PUTs the file to ``staging_key`` with the pre-signed URL, then asks the
    server to complete the upload; only then is the file validated, moved to its frame key
    and recorded. Staged files of uploads never completed expire with the grant.
    """

    upload_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    observation = models.ForeignKey(Observation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    staging_key = models.CharField(max_length=500)
    state = models.CharField(max_length=12, choices=UploadState.choices, default=UploadState.PENDING)
    reason = models.TextField(blank=True)
    frame = models.ForeignKey(Frame, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_with_key = models.ForeignKey(SiteKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.upload_id} ({self.state})"


class TargetPipelineStatus(Target):
    """A target seen from the pipeline: its frames per state (for the admin)."""

    class Meta:
        proxy = True
        verbose_name = "pipeline status per target"
        verbose_name_plural = "pipeline status per target"


@receiver(post_delete, sender=Frame, dispatch_uid="datas-frame-files")
def _delete_frame_files(sender, instance: Frame, **kwargs) -> None:
    """A deleted frame takes its file and previews with it, once the deletion is committed."""
    from observations.storage import delete_quietly

    keys = [instance.storage_key, instance.preview_key, instance.thumbnail_key]
    transaction.on_commit(lambda: [delete_quietly(key) for key in keys if key])
