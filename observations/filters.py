"""Query filters for the observations API."""
import django_filters

from network.filters import IdFilter, UTCDateTimeFilter
from observations.models import Observation


class ObservationFilter(django_filters.FilterSet):
    target_id = IdFilter(field_name="target_id")
    site_id = IdFilter(field_name="site_id")
    after = UTCDateTimeFilter(field_name="observed_at", lookup_expr="gte",
                                             help_text="observed_at >= this (UTC, ISO-8601)")
    before = UTCDateTimeFilter(field_name="observed_at", lookup_expr="lte",
                                              help_text="observed_at <= this (UTC, ISO-8601)")
    filter = django_filters.CharFilter(field_name="filter")

    class Meta:
        model = Observation
        fields = ["target_id", "site_id", "after", "before", "filter"]
