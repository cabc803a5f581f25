"""Invitations to join a network, sent by its managers as a one-time link."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from network.models import Network, Role

INVITE_LIFETIME = timedelta(days=14)


def invite_digest(token: str) -> str:
    """SHA-256 of an invitation token: only this is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """A link that makes whoever opens it (logged in, or after creating an account) a member."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True, help_text="Where the link was sent, if anywhere.")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OBSERVER)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation to {self.network} as {self.role}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class SiteStatusSample(models.Model):
    """What a site's agent reported at one heartbeat, kept at most every few minutes (status history).

    Written by `portal.signals` when a heartbeat saves the site; a gap longer than the online
    window between two samples is time the agent was not heard.
    """

    site = models.ForeignKey("sites.Site", on_delete=models.CASCADE, related_name="status_samples")
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16)
    weather_status = models.CharField(max_length=16)

    class Meta:
        ordering = ["site", "-at"]
        indexes = [models.Index(fields=["site", "at"], name="site_status_sample_idx")]

    def __str__(self) -> str:
        return f"{self.site_id} {self.status}/{self.weather_status} at {self.at:%Y-%m-%d %H:%M}"
