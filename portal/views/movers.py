"""Mover candidates on the portal: the tables of the target and frame pages, the report, and
the managers' button that searches a night's frames of a target."""
from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from observations.frames import Frame
from observations.mover_models import MoverCandidate, MoverSearch
from observations.movers import find_movers_task, night_of
from observations.storage import frame_storage
from portal.access import get_visible_or_404, is_manager, require
from targets.models import Target

CANDIDATES_SHOWN = 50


def target_movers(target: Target) -> dict:
    """Template context of a target's mover searches (newest night first) and their candidates."""
    searches = list(MoverSearch.objects.filter(network_id=target.network_id, target=target)
                    .order_by("-night")[:10])
    candidates = (MoverCandidate.objects.filter(network_id=target.network_id, search__in=searches)
                  .select_related("search").order_by("-search__night", "-snr")[:CANDIDATES_SHOWN])
    latest = Frame.objects.filter(target=target, observed_at__isnull=False).order_by("-observed_at").first()
    return {"mover_searches": searches, "mover_candidates": list(candidates),
            "mover_night": night_of(latest.observed_at) if latest else None}


def frame_movers(frame: Frame) -> dict:
    """Template context of the candidates a frame contributed to."""
    candidates = (MoverCandidate.objects.filter(network_id=frame.network_id, frames=frame)
                  .select_related("search").order_by("-snr")[:CANDIDATES_SHOWN])
    return {"mover_candidates": list(candidates)}


@login_required
@require_POST
def run_movers(request, pk: int):
    """Queue the mover search of a night's frames of the target (managers only)."""
    target = get_visible_or_404(Target.objects.all(), request.user, pk=pk)
    require(is_manager(request.user, target.network_id), "only managers of the network may run the mover search")
    try:
        night = date.fromisoformat(request.POST.get("night", "").strip())
    except ValueError:
        return HttpResponseBadRequest("night must be a date YYYY-MM-DD (the evening the night starts)")
    result = find_movers_task.delay(target.network_id, target.pk, night.isoformat())
    outcome = result.result if result.ready() else None
    if isinstance(outcome, dict) and outcome.get("error"):
        messages.error(request, outcome["error"])
    elif isinstance(outcome, dict):
        messages.success(request, f"Night of {night}: {outcome['movers']} mover(s), {outcome['streaks']} streak(s).")
    else:
        messages.success(request, f"Mover search of the night of {night} queued; refresh for the candidates.")
    return redirect("portal:target", pk=target.pk)


@login_required
@require_GET
def mover_report(request, pk: int):
    """The search's HTML report (everything embedded), from the frame storage."""
    search = get_visible_or_404(MoverSearch.objects.all(), request.user, pk=pk)
    if not search.report_key:
        raise Http404("this search has no report")
    try:
        handle = frame_storage().open(search.report_key, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("the report is missing from the frame storage") from exc
    return FileResponse(handle, content_type="text/html; charset=utf-8")
