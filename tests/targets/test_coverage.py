"""Coverage counters follow uploads, decay with time (nightly task), and the task is scheduled."""
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from targets.coverage import refresh_coverage
from targets.tasks import refresh_all_coverage
from tests.network.factories import build_world, make_observation, make_site

pytestmark = pytest.mark.django_db


def test_refresh_counts_observations_sites_and_last_week():
    world = build_world()
    second = make_site(world.a, name="Second")
    now = timezone.now()
    make_observation(world.a_target, world.a_site, observed_at=now - timedelta(days=10))
    make_observation(world.a_target, second, observed_at=now - timedelta(days=1))
    make_observation(world.a_target, second, observed_at=now - timedelta(hours=1))
    assert refresh_coverage([world.a_target.pk]) == 1
    world.a_target.refresh_from_db()
    assert (world.a_target.total_observations, world.a_target.unique_sites,
            world.a_target.observations_last_7d) == (3, 2, 2)
    assert world.a_target.last_observed_at == pytest.approx(now - timedelta(hours=1), abs=timedelta(seconds=1))
    assert refresh_coverage([world.a_target.pk]) == 0  # idempotent: nothing changed
    world.b_target.refresh_from_db()
    assert world.b_target.total_observations == 0


def test_nightly_task_runs_and_is_scheduled():
    world = build_world()
    make_observation(world.b_target, world.b_site)
    assert refresh_all_coverage.apply().get() == 1  # runs the task here, broker or not
    task = PeriodicTask.objects.get(task="targets.refresh_all_coverage")
    assert task.enabled and task.crontab is not None
