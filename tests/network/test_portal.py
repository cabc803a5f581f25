"""The first portal page: log in, pick a network, see its sites, observations and campaigns."""
import pytest
from django.test import Client

from tests.network.factories import build_world, make_member, make_observation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def test_dashboard_needs_login():
    response = Client().get("/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert Client().get("/accounts/login/").status_code == 200


def test_login_with_password_reaches_dashboard(world):
    user = make_user("alice")
    user.set_password("correct horse")
    user.save()
    make_member(world.a, "viewer", user=user)
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct horse"})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200 and b"Network A" in page.content


def test_dashboard_shows_only_the_current_networks_data(world):
    make_observation(world.a_target, world.a_site)
    client = Client()
    client.force_login(world.a_viewer)
    html = client.get("/").content.decode()
    assert "A Observatory" in html and "Delta Cephei" in html and "Cepheids" in html
    assert "B Observatory" not in html


def test_switching_network(world):
    make_member(world.b, "viewer", user=world.a_viewer)
    client = Client()
    client.force_login(world.a_viewer)
    assert client.post("/networks/net-b/switch").status_code == 302
    html = client.get("/").content.decode()
    assert "B Observatory" in html and "A Observatory" not in html
    assert client.get("/networks/net-a/switch").status_code == 405


def test_cannot_switch_to_a_network_you_are_not_in(world):
    client = Client()
    client.force_login(world.a_viewer)
    assert client.post("/networks/net-b/switch").status_code == 404
    assert "A Observatory" in client.get("/").content.decode()


def test_user_without_network_gets_a_hint():
    client = Client()
    client.force_login(make_user())
    assert b"not a member of any network" in client.get("/").content
