"""The dashboard's summaries: data quality per site and night, alert feed health per role, bounded queries."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from network.models import Role
from targets.alerts.models import AlertFeed
from targets.models import Alert
from tests.network.factories import make_campaign, make_member, make_target
from tests.observations.frame_factories import make_frame
from tests.portal.factories import client_for

pytestmark = pytest.mark.django_db


def test_quality_counts_reasons_and_nightly_medians(world):
    night = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
    for minutes, fwhm, zero_point, accepted, flags in [(0, 2.0, 21.0, True, []), (10, 3.0, 21.4, True, []),
                                                       (20, 5.0, 21.1, False, ["elongated", "cloud"]),
                                                       (30, 9.0, None, False, ["cloud"])]:
        make_frame(world.a_site, observed_at=night + timedelta(minutes=minutes), fwhm_arcsec=fwhm, accepted=accepted,
                   quality_flags=flags, photometry={} if zero_point is None else {"zero_point": zero_point})
    make_frame(world.b_site, observed_at=night, fwhm_arcsec=1.0, accepted=False, quality_flags=["b only"])
    quality = client_for(world.a_viewer).get("/").context["quality"]
    assert (quality["total"], quality["accepted"], quality["rejected"]) == (5, 3, 2)  # with the previewed frame
    assert quality["reasons"] == [("cloud", 2), ("elongated", 1)]
    row = next(r for r in quality["per_night"] if r["night"] == night.date().isoformat())
    assert row["site"] == world.a_site.name and row["frames"] == 4
    assert row["median_fwhm"] == pytest.approx(4.0) and row["median_zero_point"] == pytest.approx(21.1)


def test_quality_summary_is_kept_a_minute(world):
    client = client_for(world.a_viewer)
    before = client.get("/").context["quality"]["total"]
    make_frame(world.a_site, observed_at=datetime.now(UTC), accepted=True)
    assert client.get("/").context["quality"]["total"] == before  # cached (QUALITY_CACHE_SECONDS)
    cache.clear()
    assert client.get("/").context["quality"]["total"] == before + 1


def test_feed_health_shows_no_other_networks_traffic(world):
    AlertFeed.objects.create(name="ztf-public", kind="stream", source="ztf", lag=4, messages=900, alerts=77,
                             last_error="alert for Network B's target 'Secret nova' failed")
    Alert.objects.create(network=world.b, source="ZTF", external_id="b1", ra_deg=1, dec_deg=1, status="matched")
    viewer = client_for(world.a_viewer).get("/").content.decode()
    assert "ztf-public" not in viewer and "shown to the network's owners and managers" in viewer
    for user in (world.a_owner, world.a_manager):
        page = client_for(user).get("/").content.decode()
        assert "ztf-public [stream ztf] idle: last message never, lag 4" in page
        assert "Secret nova" not in page and "77 alerts" not in page and "matched" not in page
    staff = make_member(world.a, Role.VIEWER, username="operator", is_staff=True)
    page = client_for(staff).get("/").content.decode()
    assert "Secret nova" in page and "900 messages, 77 alerts" in page


def test_dashboard_queries_do_not_grow_with_campaigns(world, django_assert_max_num_queries):
    client = client_for(world.a_owner)
    client.get("/")
    with django_assert_max_num_queries(18):
        client.get("/")
    for i in range(7):
        make_campaign(world.a, targets=[make_target(world.a, name=f"Extra {i}")], name=f"Extra {i}")
    cache.clear()
    with django_assert_max_num_queries(18):
        response = client.get("/")
    assert len(response.context["campaigns"]) == 8
