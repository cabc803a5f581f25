"""Query filters for the sites API."""
import django_filters

from network.filters import IdFilter
from sites.models import Site


class SiteFilter(django_filters.FilterSet):
    # A plain id, not a ModelChoiceFilter: that one looks the user up among every user of
    # every network, so its 400/200 would tell a caller which ids exist elsewhere.
    owner = IdFilter(field_name="owner_id", help_text="User id of the site's owner")

    class Meta:
        model = Site
        fields = ["is_active", "automation", "owner"]
