"""Campaign progress: observations counted per target and site inside each campaign's dates, many at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from targets.models import CoveragePolicy
from targets.selectors import campaign_progress, campaigns_progress
from tests.network.factories import build_world, make_campaign, make_observation, make_site, make_target

pytestmark = pytest.mark.django_db


def test_each_campaign_counts_only_inside_its_dates_and_all_come_from_one_query():
    world = build_world()
    now = timezone.now()
    shared = make_target(world.a, name="Shared", min_observations=4)
    lonely = make_target(world.a, name="Lonely", min_observations=1)
    second_site = make_site(world.a, name="Second")
    for days_ago, site in [(1, world.a_site), (2, second_site), (10, world.a_site), (20, second_site)]:
        make_observation(shared, site, observed_at=now - timedelta(days=days_ago))
    always = make_campaign(world.a, targets=[shared, lonely], name="Always", coverage_sites=2,
                           coverage_policy=CoveragePolicy.DIVERSE)
    last_week = make_campaign(world.a, targets=[shared], name="Last week", starts_at=now - timedelta(days=7),
                              ends_at=now, coverage_sites=1)
    with CaptureQueriesContext(connection) as queries:
        progress = campaigns_progress([always, last_week])
    assert len(queries) == 1
    whole, recent = progress[always.pk], progress[last_week.pk]
    assert [(t.name, t.observations, t.sites) for t in whole.targets] == [("Lonely", 0, 0), ("Shared", 4, 2)]
    assert (whole.targets_total, whole.targets_complete, whole.observations, whole.fraction) == (2, 1, 4, 0.5)
    assert [(t.name, t.observations, t.sites, t.fraction) for t in recent.targets] == [("Shared", 2, 2, 0.5)]
    assert campaign_progress(last_week) == recent
    assert campaigns_progress([]) == {}
