"""The nested requirements of a target are held to the model's bounds."""
import pytest

from targets.models import Target
from tests.network.api_helpers import person_client
from tests.network.factories import build_world, make_target

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("requirements", [{"exposure_sec": 1e308}, {"exposure_sec": 0}, {"total_hours": 1e308},
                                          {"total_hours": -1}])
def test_absurd_requirements_are_refused_on_create_and_update(requirements):
    world = build_world()
    target = make_target(world.a, name="Kept", ra_deg=10.0, dec_deg=20.0, exposure_sec=30)
    client = person_client(world.a_manager)
    created = client.post("/api/v1/targets", {"network": "net-a", "name": "Y", "ra_deg": 1, "dec_deg": 2,
                                              "requirements": requirements}, format="json")
    assert created.status_code == 400, created.content
    assert "requirements" in created.json()
    patched = client.patch(f"/api/v1/targets/{target.pk}", {"requirements": requirements}, format="json")
    assert patched.status_code == 400, patched.content
    target.refresh_from_db()
    assert target.exposure_sec == 30 and not Target.objects.filter(name="Y").exists()


def test_name_lookup_is_one_query_whatever_the_networks(django_assert_max_num_queries):
    from network.models import Membership, Role

    world = build_world()
    make_target(world.a, name="M 31", ra_deg=10.6847, dec_deg=41.2690)
    other = make_target(world.b, name="Andromeda", ra_deg=10.6847, dec_deg=41.2690)
    other.aliases.create(name="M31")
    Membership.objects.create(network=world.b, user=world.a_viewer, role=Role.VIEWER)
    client = person_client(world.a_viewer)
    client.get("/api/v1/targets", {"name": "m-31"})  # warm the session and permission caches
    with django_assert_max_num_queries(5):
        found = client.get("/api/v1/targets", {"name": "m-31"}).json()["results"]
    assert sorted(t["name"] for t in found) == ["Andromeda", "M 31"]
