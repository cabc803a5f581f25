"""Searchable frame list (cone, date, site, filter, state) and the frame page."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth.decorators import login_required

from network.tenancy import current_network
from observations.frame_selectors import frames_in_cone
from observations.frames import Frame
from observations.states import STAGES, FrameState
from portal.access import get_visible_or_404
from portal.paging import page_of
from portal.views.common import float_param, render_page
from portal.views.movers import frame_movers
from sites.models import Site
from targets.sky import InvalidSkyPosition

LIST_COLUMNS = ("id", "original_name", "sha256", "observed_at", "uploaded_at", "filter", "state", "accepted",
                "thumbnail_key", "fwhm_arcsec", "exposure_s", "image_type", "site__name", "target__name")


def _day(request, name: str) -> datetime | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{name} must be a date like 2026-03-01, not {raw!r}") from None


def filtered_frames(request, network):
    """The network's frames narrowed by the query string; raises ValueError with a message on bad input."""
    frames = Frame.objects.filter(network=network).select_related("site", "target").only(*LIST_COLUMNS)
    site = request.GET.get("site", "")
    if site:
        if not site.isdigit():
            raise ValueError("site must be a site id")
        frames = frames.filter(site_id=int(site))
    if request.GET.get("filter"):
        frames = frames.filter(filter=request.GET["filter"])
    if request.GET.get("state"):
        if request.GET["state"] not in FrameState.values:
            raise ValueError(f"state must be one of {', '.join(FrameState.values)}")
        frames = frames.filter(state=request.GET["state"])
    after, before = _day(request, "from"), _day(request, "to")
    if after:
        frames = frames.filter(observed_at__gte=after)
    if before:
        frames = frames.filter(observed_at__lt=before + timedelta(days=1))
    ra, dec = float_param(request, "ra", 0, 360), float_param(request, "dec", -90, 90)
    if (ra is None) != (dec is None):
        raise ValueError("a cone search needs both ra and dec (degrees)")
    if ra is not None:
        radius = float_param(request, "radius", 1e-6, 180) or 1.0
        return frames_in_cone(frames, ra, dec, radius)
    return frames.order_by("-observed_at", "-id")


@login_required
def frame_list(request):
    network = current_network(request)
    error = ""
    try:
        frames = filtered_frames(request, network)
    except (ValueError, InvalidSkyPosition) as exc:
        error, frames = str(exc), Frame.objects.none()
    sites = Site.objects.filter(network=network).only("id", "name").order_by("name")
    return render_page(request, "portal/frame_list.html", {
        "page": page_of(frames, request), "error": error, "sites": sites, "states": FrameState.choices},
        status=400 if error else 200)


@login_required
def frame_detail(request, pk: int):
    frame = get_visible_or_404(Frame.objects.select_related("network", "site", "target", "observation"),
                               request.user, pk=pk)
    history = [{"stage": s.name, "after": FrameState(s.after).label, "seconds": frame.timings.get(s.name),
                "note": frame.notes.get(s.name, "")} for s in STAGES]
    footprint = {"corners": frame.footprint or [], "centre": [frame.ra_deg, frame.dec_deg],
                 "target": [frame.target.ra_deg, frame.target.dec_deg] if frame.target else None,
                 "target_name": frame.target.name if frame.target else ""}
    return render_page(request, "portal/frame_detail.html", {
        "frame": frame, "history": history, "footprint": footprint,
        "quality_items": sorted((k, v) for k, v in (frame.quality or {}).items() if k not in ("reasons",)),
        "reasons": (frame.quality or {}).get("reasons", []),
        "photometry_items": sorted((frame.photometry or {}).items()), **frame_movers(frame)},
        network=frame.network)
