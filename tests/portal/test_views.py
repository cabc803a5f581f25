"""Portal pages per role and per network: who sees what, who may change what, bad input."""
from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from network.models import Membership, Role
from sites.models import Site, SiteKey
from sites.services import KeyRejected, authenticate_site_key, record_heartbeat
from tests.portal.factories import client_for

pytestmark = pytest.mark.django_db


def own_pages(world, prefix="a") -> list[str]:
    target, site = getattr(world, f"{prefix}_target"), getattr(world, f"{prefix}_site")
    frame, campaign = getattr(world, f"{prefix}_frame"), getattr(world, f"{prefix}_campaign")
    return ["/", "/live/recent", "/targets/", f"/targets/{target.pk}/", f"/targets/{target.pk}/lightcurve.json",
            f"/targets/{target.pk}/altitude.json", "/campaigns/", f"/campaigns/{campaign.pk}/", f"/sites/{site.pk}/",
            f"/sites/{site.pk}/quality.json", f"/sites/{site.pk}/history.json", f"/sites/{site.pk}/plan", "/frames/",
            f"/frames/{frame.pk}/", "/me/", "/map.json"]


def test_every_page_needs_login(world):
    for path in own_pages(world):
        response = Client().get(path)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/"), path


@pytest.mark.parametrize("role", ["owner", "manager", "observer", "viewer"])
def test_every_role_reads_every_page_of_its_network(world, role):
    client = client_for(getattr(world, f"a_{role}"))
    for path in own_pages(world):
        assert client.get(path).status_code == 200, path


def test_another_networks_ids_are_404(world):
    client = client_for(world.a_owner)
    for path in own_pages(world, "b"):
        if path.startswith(("/targets/", "/campaigns/", "/sites/", "/frames/")) and any(c.isdigit() for c in path):
            assert client.get(path).status_code == 404, path
    assert client.post(f"/sites/{world.b_site.pk}/keys", {"label": "x"}).status_code == 404
    assert client.post(f"/sites/{world.b_site.pk}/edit", {"name": "stolen"}).status_code == 404
    assert Site.objects.get(pk=world.b_site.pk).name == "B Observatory"


def test_lists_show_only_the_current_network(world):
    html = client_for(world.a_viewer).get("/frames/").content.decode()
    assert f"/frames/{world.a_frame.pk}/" in html and f"/frames/{world.b_frame.pk}/" not in html


def test_viewer_cannot_register_edit_or_issue_keys(world):
    client = client_for(world.a_viewer)
    assert client.get("/sites/new").status_code == 403
    assert client.post("/sites/new", {"name": "Mine", "latitude": 10, "longitude": 10}).status_code == 403
    assert client.get(f"/sites/{world.a_site.pk}/edit").status_code == 403
    assert client.post(f"/sites/{world.a_site.pk}/keys", {"label": "x"}).status_code == 403
    key = world.a_site.keys.first()
    assert client.post(f"/sites/{world.a_site.pk}/keys/{key.pk}/revoke").status_code == 403
    assert SiteKey.objects.get(pk=key.pk).revoked_at is None
    assert b"Issue a new key" not in client.get(f"/sites/{world.a_site.pk}/").content
    assert client.post("/me/invite", {"role": "observer"}).status_code == 403


def test_an_observer_cannot_edit_someone_elses_site_but_a_manager_can(world):
    other = Site.objects.create(network=world.a, owner=world.a_manager, name="Manager's", latitude=1, longitude=1)
    assert client_for(world.a_observer).get(f"/sites/{other.pk}/edit").status_code == 403
    assert client_for(world.a_manager).get(f"/sites/{world.a_site.pk}/edit").status_code == 200


SITE_POST = {"name": "Backyard 8in", "latitude": "47.5", "longitude": "8.25", "elevation_m": "420",
             "timezone": "Europe/Zurich", "aperture_mm": "203", "focal_length_mm": "1000", "pixel_size_um": "3.76",
             "camera_model": "ASI2600MM", "filters": "L, V, R", "mount_type": "german_equatorial",
             "automation": "semi_auto", "horizon": "[[0, 15], [180, 25]]", "min_altitude_deg": "20",
             "ha_limit_east_h": "-5", "ha_limit_west_h": "5"}


def test_observer_registers_a_site_with_the_models_validation(world):
    client = client_for(world.a_observer)
    response = client.post("/sites/new", SITE_POST)
    site = Site.objects.get(network=world.a, name="Backyard 8in")
    assert response.status_code == 302 and response.url == f"/sites/{site.pk}/"
    assert site.owner == world.a_observer and site.filters == ["L", "V", "R"] and site.horizon == [[0, 15], [180, 25]]
    bad = client.post("/sites/new", {**SITE_POST, "name": "Other", "ha_limit_east_h": "-1", "ha_limit_west_h": "0",
                                     "timezone": "Mars/Olympus", "horizon": "[[400, 10]]"})
    html = bad.content.decode()
    assert bad.status_code == 400
    assert "is not an IANA time zone name" in html and "azimuth 400 is outside" in html
    duplicate = client.post("/sites/new", {**SITE_POST, "name": "backyard 8in"})
    assert duplicate.status_code == 400 and "already has a site with that name" in duplicate.content.decode()
    assert Site.objects.filter(network=world.a).count() == 2


def test_hour_angle_limits_that_leave_no_sky_are_refused(world):
    response = client_for(world.a_observer).post("/sites/new", {**SITE_POST, "ha_limit_east_h": "0",
                                                                "ha_limit_west_h": "0"})
    assert response.status_code == 400 and "leave no sky" in response.content.decode()


def test_a_key_is_shown_once_stored_hashed_and_revocable(world):
    client = client_for(world.a_observer)
    site = world.a_site
    assert client.post(f"/sites/{site.pk}/keys", {"label": "dome PC"}).status_code == 302
    page = client.get(f"/sites/{site.pk}/").content.decode()
    key = SiteKey.objects.get(site=site, label="dome PC")
    plaintext = page.split('id="new-key" class="secret">')[1].split("<")[0]
    assert plaintext.startswith("dsk_") and key.digest not in plaintext and plaintext not in key.digest
    assert authenticate_site_key(plaintext).pk == key.pk
    assert plaintext not in client.get(f"/sites/{site.pk}/").content.decode()  # shown once
    assert client.post(f"/sites/{site.pk}/keys/{key.pk}/revoke").status_code == 302
    with pytest.raises(KeyRejected, match="revoked"):
        authenticate_site_key(plaintext)


def test_site_status_comes_only_from_heartbeats(world):
    client = client_for(world.a_viewer)
    html = client.get(f"/sites/{world.a_site.pk}/").content.decode()
    assert "never connected" in html and "online" not in html.split("Status</h2>")[1].split("</section>")[0]
    record_heartbeat(world.a_site, status="observing", weather_status="clear", weather={"humidity": 40})
    html = client.get("/").content.decode()
    assert "online · Observing" in html and "Clear" in html and "0 s old" in html


def test_manager_sees_members_and_invites_by_email(world):
    client = client_for(world.a_manager)
    html = client.get("/me/").content.decode()
    assert "a_viewer" in html and "Invite someone" in html
    assert "Invite someone" not in client_for(world.a_observer).get("/me/").content.decode()
    response = client.post("/me/invite", {"email": "new@example.org", "role": "observer"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = mail.outbox[0].body.split("\n")[3]
    assert "/invitations/" in link and mail.outbox[0].to == ["new@example.org"]
    newcomer = Client()
    path = link.split("testserver")[1]
    assert newcomer.get(path).status_code == 200
    joined = newcomer.post(path, {"username": "newcomer", "password1": "a long pass phrase 42",
                                  "password2": "a long pass phrase 42"})
    assert joined.status_code == 302
    assert Membership.objects.get(user__username="newcomer", network=world.a).role == Role.OBSERVER
    assert newcomer.get(path).status_code == 404  # used once


def test_light_curve_marks_instrumental_and_calibrated(world):
    data = client_for(world.a_viewer).get(f"/targets/{world.a_target.pk}/lightcurve.json").json()
    names = {trace["name"]: trace for trace in data["data"]}
    assert set(names) == {"V (calibrated)", "V (instrumental)"}
    assert len(names["V (calibrated)"]["y"]) == 30 and len(names["V (instrumental)"]["y"]) == 10
    assert all(y == pytest.approx(-8.5) for y in names["V (instrumental)"]["y"])
    assert names["V (calibrated)"]["error_y"]["array"][0] == pytest.approx(0.01)


def test_altitude_curve_peaks_at_the_meridian_altitude(world):
    data = client_for(world.a_viewer).get(f"/targets/{world.a_target.pk}/altitude.json").json()
    # Delta Cephei (dec +58.4) from La Palma (lat 28.76): never higher than 90 - |lat - dec| = 60.3 deg.
    assert [t["name"] for t in data["data"]] == ["A Observatory"]
    heights = [y for y in data["data"][0]["y"] if y is not None]
    assert heights and 20 <= max(heights) <= 60.4


def test_bad_search_input_is_a_400_with_a_message(world):
    client = client_for(world.a_viewer)
    for path, message in [("/frames/?ra=10", "needs both ra and dec"), ("/frames/?ra=abc&dec=1", "must be a number"),
                          ("/frames/?from=yesterday", "must be a date"), ("/frames/?state=lost", "state must be"),
                          ("/targets/?ra=10&dec=95", "between -90 and 90")]:
        response = client.get(path)
        assert response.status_code == 400 and message in response.content.decode(), path


def test_frame_cone_search_finds_the_frame(world):
    client = client_for(world.a_viewer)
    t = world.a_target
    near = client.get(f"/frames/?ra={t.ra_deg + 0.01}&dec={t.dec_deg}&radius=0.1").content.decode()
    far = client.get(f"/frames/?ra={(t.ra_deg + 180) % 360}&dec={-t.dec_deg}&radius=1").content.decode()
    assert f"/frames/{world.a_frame.pk}/" in near and f"/frames/{world.a_frame.pk}/" not in far


def test_frame_page_shows_grade_pipeline_and_photometry(world):
    html = client_for(world.a_viewer).get(f"/frames/{world.a_frame.pk}/").content.decode()
    assert f"/api/v1/frames/{world.a_frame.pk}/preview" in html and "Accepted" in html
    assert "zero_point" in html and "EXPTIME" in html and "footprint-data" in html


def test_heartbeats_build_the_status_history_with_gaps_marked(world):
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from portal.models import SiteStatusSample

    start = timezone.now() - timedelta(hours=3)
    steps = [(0, "idle", "clear"), (1, "idle", "clear"), (2, "observing", "clear"), (120, "parked", "cloudy")]
    for minutes, status, weather in steps:
        with mock.patch("sites.services.timezone.now", return_value=start + timedelta(minutes=minutes)):
            record_heartbeat(world.a_site, status=status, weather_status=weather)
    # The second heartbeat repeats the first within 5 minutes: not sampled.
    assert list(SiteStatusSample.objects.filter(site=world.a_site).order_by("at").values_list("status", flat=True)) \
        == ["idle", "observing", "parked"]
    data = client_for(world.a_viewer).get(f"/sites/{world.a_site.pk}/history.json").json()
    status = data["data"][0]["y"]
    # 118 min of silence after "observing" (the online window is 15 min), and silence since "parked".
    assert status == ["Idle", "Observing", "not heard", "Parked", "not heard"]
    assert data["data"][1]["y"][-2] == "Cloudy"


def test_the_map_shows_sites_by_heartbeat_over_the_night_side(world):
    client = client_for(world.a_viewer)
    data = client.get("/map.json").json()
    heat, online, offline = data["data"]
    assert online["text"] == [] and offline["text"] == ["A Observatory"]
    record_heartbeat(world.a_site, status="idle")
    heat, online, offline = client.get("/map.json").json()["data"]
    assert online["text"] == ["A Observatory"] and online["customdata"] == [f"/sites/{world.a_site.pk}/"]
    sun = [value for row in heat["z"] for value in row]
    assert max(sun) > 60 and min(sun) < -60  # a day side and a night side


def test_the_night_grid_puts_the_sun_overhead_at_the_subsolar_point():
    from datetime import UTC, datetime

    import numpy as np

    from portal.views.history import night_grid

    # 2026 March equinox (20 March 14:46 UTC): the Sun is overhead near latitude 0, longitude -41.5.
    lon, lat, sun = night_grid(datetime(2026, 3, 20, 14, 46, tzinfo=UTC), step_deg=1.0)
    row, col = np.unravel_index(np.argmax(sun), sun.shape)
    assert abs(lat[row]) <= 1 and abs(lon[col] - (-41.5)) <= 2 and sun[row, col] > 88


def test_the_login_page_lists_demo_accounts_only_in_a_demo(world, settings):
    from tests.network.factories import make_member, make_user

    make_user("demo")
    make_member(world.a, Role.OBSERVER, username="obs_lapalma")
    settings.DEBUG = True
    html = Client().get("/accounts/login/").content.decode()
    assert "Demo accounts" in html and "demo-datas" in html and "obs_lapalma" in html
    settings.DEBUG = False
    assert "demo-datas" not in Client().get("/accounts/login/").content.decode()


def test_demo_observers_log_in_with_the_demo_password():
    from django.contrib.auth import get_user_model

    from demo import services as demo
    from tests.network.factories import make_network

    networks = {slug: make_network(slug=slug) for slug in ("vsnet", "exonet")}
    sites = demo._load_sites(networks, demo.DemoReport())
    observers = get_user_model().objects.filter(username__startswith="obs_")
    assert observers.count() == len(sites) and all(o.check_password(demo.DEMO_PASSWORD) for o in observers[:2])
    assert not any(site.last_seen or site.weather_reported_at for site in sites.values())


def test_tasking_downloads_are_for_the_sites_operators(world):
    from django.utils import timezone

    from tests.network.factories import make_target

    # A target overhead at La Palma around local midnight tonight, whatever the date: opposite the Sun.
    day = timezone.now().timetuple().tm_yday
    make_target(world.a, name="Opposite the Sun", ra_deg=((day - 80) * 360 / 365.25 + 180) % 360, dec_deg=29.0,
                total_hours=0.5, required_filters=["V"], exposure_sec=60)
    site = world.a_site
    assert client_for(world.a_viewer).get(f"/sites/{site.pk}/tasking/ekos").status_code == 403
    owner = client_for(world.a_observer)
    bad = owner.get(f"/sites/{site.pk}/tasking/sgp")
    assert bad.status_code == 400 and b"unknown tasking format" in bad.content
    nina = owner.get(f"/sites/{site.pk}/tasking/nina")
    assert nina.status_code == 400 and b"needs your template" in nina.content
    csv = owner.get(f"/sites/{site.pk}/tasking/csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert "Opposite the Sun" in csv.content.decode()
    ekos = owner.get(f"/sites/{site.pk}/tasking/ekos")
    assert ekos.status_code == 200 and ekos.content[:2] == b"PK"
    assert "Opposite the Sun" in owner.get(f"/sites/{site.pk}/plan").content.decode()


def test_no_portal_page_references_anything_outside_or_missing(world):
    from tests.network.test_offline_assets import check_page

    client = client_for(world.a_observer)
    for path in own_pages(world):
        if not path.endswith((".json", "/plan", "/recent")):
            check_page(client, path)  # every script, stylesheet and image it loads answers here
