"""The daily re-scan of configured shares (the beat entry is created by a migration)."""
from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)
RESCAN_TASK = "observations.rescan_archive_shares"


@shared_task(name=RESCAN_TASK, ignore_result=True)
def rescan_archive_shares() -> dict:
    """Catalogue what is new on every enabled share (idempotent: known files are skipped)."""
    from django.utils import timezone

    from observations.archive.catalogue import CatalogueError, catalogue_paths
    from observations.archive.models import ArchiveShare

    results = {}
    for share in ArchiveShare.objects.filter(enabled=True).select_related("network", "site"):
        try:
            summary = catalogue_paths([share.path], share.network, share.site, solve=share.solve).as_dict()
        except CatalogueError as exc:
            summary = {"error": str(exc)}
            log.warning("archive share %s: %s", share.path, exc)
        ArchiveShare.objects.filter(pk=share.pk).update(last_scan_at=timezone.now(), last_summary=summary)
        results[share.path] = summary
    return results
