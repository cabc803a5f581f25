"""Query filters for the targets API."""
import django_filters

from network.filters import IdFilter
from targets.models import Target, TargetType


class TargetFilter(django_filters.FilterSet):
    target_type = django_filters.ChoiceFilter(choices=TargetType.choices)
    active = django_filters.BooleanFilter(field_name="is_active")
    priority_min = django_filters.NumberFilter(field_name="priority", lookup_expr="gte")
    campaign = IdFilter(field_name="campaign_memberships__campaign_id", help_text="Campaign id")
    mag_max = django_filters.NumberFilter(field_name="magnitude", lookup_expr="lte")

    class Meta:
        model = Target
        fields = ["target_type", "active", "priority_min", "campaign", "mag_max"]
