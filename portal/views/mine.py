"""The participant's own space: their sites, keys, data and contributions; members and invitations."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from network.models import Membership
from network.tenancy import current_network, switch_network
from observations.frames import Frame
from observations.models import Observation
from portal.access import can_observe, is_manager, require
from portal.forms import InviteForm
from portal.models import INVITE_LIFETIME, Invitation, invite_digest, new_invite_token
from portal.queries import contributions, site_states
from portal.views.common import render_page
from sites.models import Site, SiteKey


@login_required
def my_observatory(request):
    network = current_network(request)
    if network is None:
        return render_page(request, "portal/mine.html", {})
    sites = list(Site.objects.filter(network=network, owner=request.user).order_by("name"))
    keys = (SiteKey.objects.filter(site__in=sites, revoked_at__isnull=True).select_related("site")
            .order_by("site__name", "-created_at")[:50])
    managing = is_manager(request.user, network)
    context = {
        "site_rows": list(zip(sites, site_states(sites), strict=True)), "keys": keys,
        "can_register": can_observe(request.user, network), "contributions": contributions(network, request.user),
        "observations": Observation.objects.filter(network=network, site__owner=request.user)
        .select_related("target", "site").only("id", "observed_at", "filter", "magnitude", "magnitude_error",
                                                "photometry_method", "target__name", "site__name").order_by("-observed_at")[:15],
        "frames": Frame.objects.filter(network=network, site__owner=request.user).select_related("target", "site")
        .only("id", "original_name", "sha256", "observed_at", "filter", "state", "accepted", "thumbnail_key",
              "target__name", "site__name").order_by("-observed_at", "-id")[:12],
        "managing": managing}
    if managing:
        context["members"] = (Membership.objects.filter(network=network).select_related("user")
                              .order_by("role", "user__username")[:200])
        context["invitations"] = Invitation.objects.filter(network=network, accepted_at__isnull=True,
                                                           expires_at__gt=timezone.now())[:20]
        context["invite_form"] = InviteForm()
        context["invite_link"] = request.session.pop("portal_invite_link", None)
    return render_page(request, "portal/mine.html", context)


@login_required
@require_POST
def invite(request):
    network = current_network(request)
    require(network is not None and is_manager(request.user, network), "only owners and managers may invite")
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("portal:mine")
    token = new_invite_token()
    Invitation.objects.create(network=network, email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                              digest=invite_digest(token), invited_by=request.user,
                              expires_at=timezone.now() + INVITE_LIFETIME)
    link = request.build_absolute_uri(reverse("portal:invitation", args=[token]))
    if form.cleaned_data["email"]:
        send_mail(f"Join {network.name} on DATAS",
                  f"{request.user.get_username()} invites you to {network.name} as "
                  f"{form.cleaned_data['role']}.\n\nOpen this link within {INVITE_LIFETIME.days} days:\n{link}\n",
                  None, [form.cleaned_data["email"]])
        messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    request.session["portal_invite_link"] = link
    return redirect("portal:mine")


def accept_invitation(request, token: str):
    """Open an invitation: join at once when logged in, else create an account first."""
    invitation = Invitation.objects.select_related("network").filter(digest=invite_digest(token)).first()
    if invitation is None or not invitation.is_open:
        raise Http404("this invitation does not exist, was used or has expired")
    form = UserCreationForm(request.POST or None) if not request.user.is_authenticated else None
    if request.method == "POST":
        if form is not None:
            if not form.is_valid():
                return render_page(request, "portal/invitation.html", {"invitation": invitation, "form": form},
                                   network=invitation.network, status=400)
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        with transaction.atomic():
            Membership.objects.get_or_create(user=request.user, network=invitation.network,
                                             defaults={"role": invitation.role})
            invitation.accepted_by, invitation.accepted_at = request.user, timezone.now()
            invitation.save(update_fields=["accepted_by", "accepted_at"])
        switch_network(request, invitation.network)
        messages.success(request, f"Welcome to {invitation.network.name}.")
        return redirect("portal:mine")
    return render_page(request, "portal/invitation.html", {"invitation": invitation, "form": form},
                       network=invitation.network)
