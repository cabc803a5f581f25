"""Forms of the participant's space: a site (the model's own validation), a key label, an invitation."""
from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ValidationError

from network.models import Role
from sites.models import Site

SITE_FIELDS = ["name", "latitude", "longitude", "elevation_m", "timezone", "aperture_mm", "focal_length_mm",
               "pixel_size_um", "camera_model", "filters", "fov_arcmin", "limiting_mag", "mount_type", "automation",
               "horizon", "min_altitude_deg", "ha_limit_east_h", "ha_limit_west_h"]


class FilterListField(forms.CharField):
    """Filter names typed as ``B, V, R`` and stored as the model's list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return [name.strip() for name in text.split(",") if name.strip()]


class HorizonField(forms.CharField):
    """A horizon profile as JSON text, ``[[azimuth_deg, min_altitude_deg], ...]``."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return value if isinstance(value, str) else json.dumps(value or [])

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return []
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"horizon is not valid JSON: {exc.msg} at character {exc.pos}") from exc


class SiteForm(forms.ModelForm):
    """Register or edit a site; the view sets ``instance.network`` and ``instance.owner`` first."""

    filters = FilterListField(required=False, help_text="Filter names exactly as the wheel reports them, "
                                                        "separated by commas.")
    horizon = HorizonField(required=False, help_text="[[azimuth_deg, min_altitude_deg], ...]; empty for a flat "
                                                     "horizon.")

    class Meta:
        model = Site
        fields = SITE_FIELDS

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Site.objects.filter(network_id=self.instance.network_id, name__iexact=name)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise ValidationError("this network already has a site with that name")
        return name


class KeyForm(forms.Form):
    label = forms.CharField(max_length=80, required=False, help_text="What the key is for, e.g. 'observatory PC'.")


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, help_text="Leave empty to copy the link yourself.")
    role = forms.ChoiceField(choices=[(Role.OBSERVER, "Observer"), (Role.VIEWER, "Viewer"),
                                      (Role.MANAGER, "Manager")], initial=Role.OBSERVER)
