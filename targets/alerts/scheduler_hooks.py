"""What alert ingest needs from the scheduler, which provides it (``scheduling`` sits above
``targets`` in the layers, so ``targets`` may not import it).

The scheduling app registers its passes module when Django starts (``SchedulingConfig.ready``):
``site_spec`` (a site as the scheduler sees it, for "reachable by N sites"), ``_now`` (the
scheduler's clock, which tests move), ``mark_stale`` and ``run_network_pass`` (an urgent
alert's pass, at once).
"""
from __future__ import annotations

from types import ModuleType

from django.core.exceptions import ImproperlyConfigured

_provider: ModuleType | None = None


def register(provider: ModuleType) -> None:
    global _provider
    _provider = provider


def scheduler() -> ModuleType:
    if _provider is None:
        raise ImproperlyConfigured("alert rules need the scheduler: add 'scheduling' to INSTALLED_APPS")
    return _provider
