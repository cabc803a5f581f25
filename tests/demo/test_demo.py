"""``manage.py load_demo`` builds the demo and is idempotent."""
from io import StringIO

import pytest
from django.core.management import call_command

from network.models import Network
from observations.models import Observation
from sites.models import Site, SiteKey
from targets.models import Campaign, Target

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, ...]:
    return (Network.objects.count(), Site.objects.count(), Target.objects.count(), Campaign.objects.count(),
            Observation.objects.count(), SiteKey.objects.count())


def test_load_demo_twice_builds_once():
    out = StringIO()
    call_command("load_demo", stdout=out)
    first = counts()
    assert first[:2] == (2, 13)
    assert first[2] >= 2 * 250  # a few hundred real targets per network
    assert first[3] == 6 and first[4] == 360 and first[5] == 13
    text = out.getvalue()
    assert "'demo'" in text and "dsk_" in text
    again = StringIO()
    call_command("load_demo", stdout=again)
    assert counts() == first
    assert "nothing new" in again.getvalue() and "dsk_" not in again.getvalue()


def test_demo_sites_are_offline_until_an_agent_reports_and_coverage_is_ready():
    call_command("load_demo", stdout=StringIO())
    # No agent has run: no site claims a heartbeat, a status or weather it never reported.
    assert not any(s.is_online or s.last_seen or s.weather_reported_at for s in Site.objects.all())
    cepheid = Target.objects.get(network__slug="vsnet", name="Delta Cephei")
    assert cepheid.total_observations == 60 and cepheid.unique_sites >= 2
    assert Target.objects.get(network__slug="vsnet", name="M31").aliases.filter(name="Andromeda Galaxy").exists()
