"""Moving-object candidates found in a night's frames of a target (data products of those frames).

One :class:`MoverSearch` per (network, target, night): the frames searched, the stored report
and JSON record, and what went wrong if it failed. Its :class:`MoverCandidate` rows are the
movers and streaks found; re-running a night replaces them.
"""
from __future__ import annotations

from django.db import models
from django.utils import timezone

from network.models import Network
from observations.frames import Frame
from targets.models import Target


class MoverKind(models.TextChoices):
    MOVER = "mover", "Mover"
    STREAK = "streak", "Streak"


class MoverSearch(models.Model):
    """A mover search over one night's frames of one target."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="mover_searches")
    night = models.DateField(help_text="UTC date of the evening the night starts (noon to noon UTC).")
    frames = models.ManyToManyField(Frame, related_name="mover_searches", blank=True)
    report_key = models.CharField(max_length=500, blank=True, help_text="index.html of the report, frame storage.")
    json_key = models.CharField(max_length=500, blank=True, help_text="The JSON record, frame storage.")
    parameters = models.JSONField(default=dict, blank=True, help_text="Search parameters and timings.")
    error = models.TextField(blank=True, help_text="Why the search failed, if it did.")
    searched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "target", "night"],
                                               name="mover_search_unique_night")]

    def __str__(self) -> str:
        return f"movers of {self.target} on {self.night}"


class MoverCandidate(models.Model):
    """A mover (constant-rate track) or streak (single-frame trail) found by a search."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    search = models.ForeignKey(MoverSearch, on_delete=models.CASCADE, related_name="candidates")
    number = models.CharField(max_length=8, help_text="Id in the report: M0001, S0001, ...")
    kind = models.CharField(max_length=8, choices=MoverKind.choices)
    rate_px_per_frame = models.FloatField(null=True, blank=True, help_text="px per median cadence; none for streaks.")
    angle_deg = models.FloatField(help_text="Direction of motion (or of the trail), degrees from +x towards +y.")
    snr = models.FloatField(help_text="Track score (SNR summed along the track).")
    positions = models.JSONField(default=list, blank=True,
                                 help_text="Per frame: x, y (0-based px), ra, dec (deg), time (UTC), sigma_px, ...")
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    frames = models.ManyToManyField(Frame, related_name="mover_candidates", blank=True)
    found_by = models.CharField(max_length=16, blank=True, help_text="grid, seed, link, slow or streak.")

    class Meta:
        ordering = ["-snr"]
        indexes = [models.Index(fields=["network", "search"], name="mover_cand_network_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.number} of {self.search}"
