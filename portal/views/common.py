"""What every portal page shares: the network switcher and the person's role."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from network.models import Network
from network.tenancy import current_network, networks_for, role_in


def render_page(request: HttpRequest, template: str, context: dict, network: Network | None = None,
                status: int = 200) -> HttpResponse:
    """Render ``template`` with the switcher's networks and the role in ``network`` (default: current)."""
    network = network or context.get("network") or current_network(request)
    base = {"network": network, "networks": list(networks_for(request.user))}
    if "role" not in context:
        base["role"] = role_in(request.user, network) if network else None
    return render(request, template, {**base, **context}, status=status)


def plot_response(traces: list[dict], layout: dict | None = None, **extra) -> JsonResponse:
    """A Plotly figure as JSON (the browser draws it with the served plotly.min.js)."""
    return JsonResponse({"data": traces, "layout": layout or {}, **extra})


def float_param(request: HttpRequest, name: str, low: float, high: float) -> float | None:
    """A float query parameter within [low, high]; None when absent; ValueError with a message otherwise."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}")
    return value
