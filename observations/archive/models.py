"""Where catalogued frames lie on a share, and which shares are re-scanned daily."""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from network.models import Network
from observations.frames import Frame
from sites.models import Site


class SolveMode(models.TextChoices):
    NEVER = "never", "Never plate solve (header WCS or pointing only)"
    MISSING = "missing", "Solve lights whose header has no usable WCS"
    ALWAYS = "always", "Solve every light"


class ArchiveFile(models.Model):
    """A frame catalogued where it lies: its path on the share, as last seen.

    The frame (unique per network on its SHA-256) is the content; this row is its location.
    A file moved or renamed on the share keeps its frame and gets its new path here.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    frame = models.OneToOneField(Frame, on_delete=models.CASCADE, related_name="archive_file")
    path = models.CharField(max_length=1024, help_text="Absolute path on the share.")
    size_bytes = models.BigIntegerField()
    mtime = models.FloatField(help_text="Modification time when catalogued, POSIX seconds.")
    classified_by = models.CharField(max_length=200, blank=True, help_text="How its kind was decided.")
    catalogued_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "path"], name="archive_file_unique_path")]

    def __str__(self) -> str:
        return self.path


class ArchiveShare(models.Model):
    """A folder the daily beat entry re-scans for a network (for set-ups without a watcher)."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=1024)
    solve = models.CharField(max_length=8, choices=SolveMode.choices, default=SolveMode.MISSING)
    enabled = models.BooleanField(default=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_summary = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "path"], name="archive_share_unique_path")]

    def __str__(self) -> str:
        return self.path
