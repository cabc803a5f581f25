"""Celery tasks of the network app: the scheduler passes (run by django-celery-beat)."""
from celery import shared_task

from scheduling.passes import run_all_passes, run_network_pass


@shared_task(name="network.schedule_all")
def schedule_all() -> dict[str, dict[str, float]]:
    """A pass for every active network; idempotent (a second run just refreshes the lists)."""
    return run_all_passes()


@shared_task(name="network.schedule_network")
def schedule_network_pass(network_id: int) -> dict[str, float]:
    """A pass for one network, queued when something marked its lists stale."""
    return run_network_pass(network_id).stats
