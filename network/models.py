"""Tenancy: a Network is a tenant; people join it through a Membership with a role."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """What a member may do in a network, from most to least powerful."""

    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    OBSERVER = "observer", "Observer"
    VIEWER = "viewer", "Viewer"


# Roles that run the network: campaigns, targets, alerts, every site and observation.
MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})
# Roles that may register sites and submit observations for the sites they own.
OBSERVING_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.OBSERVER})


class Network(models.Model):
    """A telescope network, the unit of tenancy: every network-owned row points here."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True, help_text="Short id used in URLs and the API.")
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="networks")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A person's role in one network; a person may belong to several networks."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    joined_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "network"], name="membership_unique_user_network")]
        ordering = ["network__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.network}"

    @property
    def is_managing(self) -> bool:
        return self.role in MANAGING_ROLES


class UserToken(models.Model):
    """A personal API token (``Authorization: Bearer dut_...``), stored only as a SHA-256 hash."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    label = models.CharField(max_length=80, blank=True)
    lookup = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"token {self.lookup} of {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
