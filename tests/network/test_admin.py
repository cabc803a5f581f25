"""The admin is tenant-scoped: a manager sees and edits only their networks' rows."""
import pytest
from django.test import Client
from django.urls import reverse

from observations.models import Observation
from sites.models import SiteKey
from targets.models import Campaign, Target
from tests.network.factories import build_world, make_member, make_observation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_world()
    for user in (world.a_manager, world.a_owner, world.a_viewer):
        user.is_staff = True
        user.save()
    world.a_obs = make_observation(world.a_target, world.a_site)
    world.b_obs = make_observation(world.b_target, world.b_site)
    return world


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["targets/target", "sites/site", "sites/sitekey", "targets/campaign",
                                   "observations/observation", "network/network", "network/membership"])
def test_manager_changelists_show_only_their_network(world, model):
    response = admin_client(world.a_manager).get(f"/admin/{model}/")
    assert response.status_code == 200
    rows = list(response.context["cl"].queryset)
    assert rows, model
    networks = {getattr(row, "network_id", None) or row.pk for row in rows} if model == "network/network" else {
        row.network_id for row in rows}
    assert networks == {world.a.pk}


def test_manager_cannot_open_another_networks_rows(world):
    client = admin_client(world.a_manager)
    for obj in (world.b_target, world.b_site, world.b_campaign, world.b_obs, world.b):
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
        response = client.get(url)
        # Django's admin answers an id outside the queryset by redirecting to the index.
        assert response.status_code == 302, url
        assert response.url == reverse("admin:index")
    ok = client.get(reverse("admin:targets_target_change", args=[world.a_target.pk]))
    assert ok.status_code == 200


def test_manager_edits_own_target_and_choices_are_scoped(world):
    client = admin_client(world.a_manager)
    url = reverse("admin:targets_target_change", args=[world.a_target.pk])
    form = client.get(url).context["adminform"].form
    assert list(form.fields["network"].queryset) == [world.a]
    response = client.post(url, {
        "network": world.b.pk, "name": "Delta Cephei", "target_type": "variable", "ra_deg": 337.2929,
        "dec_deg": 58.4152, "priority": 3, "min_observations": 1, "required_filters": "[]", "time_windows": "[]",
        "metadata": "{}", "aliases-TOTAL_FORMS": 0, "aliases-INITIAL_FORMS": 0,
        "campaign_memberships-TOTAL_FORMS": 0, "campaign_memberships-INITIAL_FORMS": 0,
    })
    assert response.status_code == 200 and "network" in response.context["adminform"].form.errors
    world.a_target.refresh_from_db()
    assert world.a_target.network == world.a


def test_manager_actions_apply_to_own_rows(world):
    client = admin_client(world.a_manager)
    client.post(reverse("admin:targets_target_changelist"),
                {"action": "deactivate", "_selected_action": [world.a_target.pk, world.b_target.pk]})
    assert Target.objects.get(pk=world.a_target.pk).is_active is False
    assert Target.objects.get(pk=world.b_target.pk).is_active is True
    keys = SiteKey.objects.filter(site__in=[world.a_site, world.b_site])
    client.post(reverse("admin:sites_sitekey_changelist"),
                {"action": "revoke", "_selected_action": [k.pk for k in keys]})
    assert SiteKey.objects.get(site=world.a_site).revoked_at is not None
    assert SiteKey.objects.get(site=world.b_site).revoked_at is None


def test_issue_key_action_shows_the_key_once(world):
    client = admin_client(world.a_manager)
    response = client.post(reverse("admin:sites_site_changelist"),
                           {"action": "issue_key", "_selected_action": [world.a_site.pk]}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert any("dsk_" in m for m in shown)
    assert SiteKey.objects.filter(site=world.a_site).count() == 2


def test_viewer_and_plain_staff_see_nothing(world):
    viewer = admin_client(world.a_viewer)
    assert viewer.get("/admin/targets/target/").status_code == 403
    stranger = make_user(is_staff=True)
    assert admin_client(stranger).get("/admin/sites/site/").status_code == 403


def test_superuser_sees_every_network(world):
    root = make_user(is_staff=True, is_superuser=True)
    rows = admin_client(root).get("/admin/observations/observation/").context["cl"].queryset
    assert set(rows) == set(Observation.objects.all())


def test_manager_of_two_networks_sees_both(world):
    make_member(world.b, "manager", user=world.a_manager)
    rows = admin_client(world.a_manager).get("/admin/targets/target/").context["cl"].queryset
    assert {t.network_id for t in rows} == {world.a.pk, world.b.pk}


def test_only_owners_change_membership(world):
    membership = world.a.memberships.get(user=world.a_viewer)
    url = reverse("admin:network_membership_change", args=[membership.pk])
    manager_view = admin_client(world.a_manager).post(url, {"user": world.a_viewer.pk, "network": world.a.pk,
                                                            "role": "owner"})
    assert manager_view.status_code == 403
    owner = admin_client(world.a_owner).post(url, {"user": world.a_viewer.pk, "network": world.a.pk,
                                                   "role": "observer"})
    assert owner.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "observer"


def test_an_owner_never_sees_other_networks_people(world):
    """The member inline on the network page lists only people of the owner's own networks."""
    response = admin_client(world.a_owner).get(reverse("admin:network_network_change", args=[world.a.pk]))
    assert response.status_code == 200
    formset = next(f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "memberships")
    people = set(formset.formset.empty_form.fields["user"].queryset)
    assert world.a_viewer in people and world.a_manager in people
    assert world.b_manager not in people


def test_a_new_campaign_cannot_take_another_networks_target(world):
    """From review: the inline's network check was skipped while the new campaign had no id."""
    make_member(world.b, "manager", user=world.a_manager)  # may pick targets of both networks
    response = admin_client(world.a_manager).post(reverse("admin:targets_campaign_add"), {
        "network": world.a.pk, "name": "Mixed", "coverage_policy": "diverse", "coverage_sites": 1,
        "priority_boost": 0, "is_active": "on",
        "memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 0,
        "memberships-0-target": world.b_target.pk, "memberships-0-priority_boost": 0,
    })
    assert response.status_code == 200, "the form must come back with the error, not save"
    errors = [e for form in response.context["inline_admin_formsets"][0].formset.forms for e in form.errors.values()]
    assert any("another network" in str(e) for e in errors)
    assert not Campaign.objects.filter(name="Mixed").exists()
    # The same campaign with its own network's target saves.
    response = admin_client(world.a_manager).post(reverse("admin:targets_campaign_add"), {
        "network": world.a.pk, "name": "Own", "coverage_policy": "diverse", "coverage_sites": 1,
        "priority_boost": 0, "is_active": "on",
        "memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 0,
        "memberships-0-target": world.a_target.pk, "memberships-0-priority_boost": 0,
    })
    assert response.status_code == 302
    assert list(Campaign.objects.get(name="Own").targets.all()) == [world.a_target]
