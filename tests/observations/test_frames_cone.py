"""Frame cone search against brute force (Q3C on PostgreSQL, exact on SQLite), API and command."""
import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from observations.frame_selectors import frames_in_cone
from observations.frames import Frame
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_site
from tests.observations.frame_factories import make_frame
from tests.targets.test_sky import CONES, brute_force, sky_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def frames_on_the_sky(world):
    """Solved frames all over the sky in network A, their twins in B, and unsolved frames."""
    ras, decs = sky_sample()
    for site in (world.a_site, world.b_site):
        Frame.objects.bulk_create([
            Frame(network=site.network, site=site, sha256=f"{site.pk:08d}{i:056d}", size_bytes=1, storage_key="k",
                  width=512, height=512, ra_deg=float(ra), dec_deg=float(dec))
            for i, (ra, dec) in enumerate(zip(ras, decs, strict=True))])
    make_frame(world.a_site)  # never solved: no centre, never in a cone
    rows = np.array(list(Frame.objects.filter(network=world.a, ra_deg__isnull=False)
                         .values_list("pk", "ra_deg", "dec_deg")))
    return rows


@pytest.mark.parametrize(("ra", "dec", "radius"), CONES)
def test_frame_cone_search_matches_brute_force(world, frames_on_the_sky, ra, dec, radius):
    expected, ambiguous = brute_force(frames_on_the_sky, ra, dec, radius)
    found = list(frames_in_cone(Frame.objects.filter(network=world.a), ra, dec, radius))
    assert {f.pk for f in found} - ambiguous == expected - ambiguous
    assert expected
    separations = [f.separation_deg for f in found]
    assert separations == sorted(separations)


def test_api_cone_search_is_scoped_and_ordered(world, frames_on_the_sky):
    ra, dec, radius = 0.0, 80.0, 15.0
    expected, ambiguous = brute_force(frames_on_the_sky, ra, dec, radius)
    client = person_client(world.a_viewer)
    response = client.get("/api/v1/frames", {"ra": ra, "dec": dec, "radius_deg": radius, "limit": 1000})
    assert response.status_code == 200, response.content
    body = response.json()
    ids = {row["id"] for row in body["results"]}
    assert ids - ambiguous == expected - ambiguous and body["count"] == len(ids)
    assert all(row["network"] == "net-a" for row in body["results"])
    separations = [row["separation_deg"] for row in body["results"]]
    assert separations == sorted(separations) and separations[-1] <= radius + 1e-9
    assert body["results"][0]["wcs"]["ra_deg"] is not None


def test_api_cone_search_rejects_bad_cones(world):
    client = person_client(world.a_viewer)
    for params in ({"ra": 10, "dec": 95, "radius_deg": 1}, {"ra": 10, "dec": 0, "radius_deg": 0},
                   {"ra": "x", "dec": 0, "radius_deg": 1}):
        response = client.get("/api/v1/frames", params)
        assert response.status_code == 400, params


def test_agent_sees_only_its_site_frames(world):
    mine = make_frame(world.a_site, ra_deg=83.6, dec_deg=22.0)
    other_site = make_site(world.a)
    make_frame(other_site, ra_deg=83.6, dec_deg=22.0)
    response = agent_client(world.a_key).get("/api/v1/frames", {"ra": 83.6, "dec": 22, "radius_deg": 1})
    assert [row["id"] for row in response.json()["results"]] == [mine.pk]
    assert agent_client(world.a_key).get(f"/api/v1/frames/{mine.pk}").status_code == 200
    b_frame = make_frame(world.b_site)
    assert person_client(world.a_viewer).get(f"/api/v1/frames/{b_frame.pk}").status_code == 404


def test_command_lists_frames_in_a_cone(world, frames_on_the_sky):
    ra, dec, radius = 359.95, -33.0, 0.7
    expected, ambiguous = brute_force(frames_on_the_sky, ra, dec, radius)
    out = StringIO()
    call_command("frames_cone", str(ra), str(dec), str(radius), "--network", "net-a", "--json", "--limit", "1000",
                 stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {r["id"] for r in rows} - ambiguous == expected - ambiguous
    table = StringIO()
    call_command("frames_cone", str(ra), str(dec), str(radius), "--network", "net-a", stdout=table)
    assert table.getvalue().startswith(f"{len(rows)} frame(s) within 0.7 deg")
    with pytest.raises(CommandError, match="dec 91"):
        call_command("frames_cone", "10", "91", "1")
    with pytest.raises(CommandError, match="no network"):
        call_command("frames_cone", "10", "0", "1", "--network", "nope")


@pytest.mark.postgres_only
def test_frame_cone_search_uses_the_q3c_index(world, frames_on_the_sky):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    plan = frames_in_cone(Frame.objects.all(), 83.6, 22.0, 5.0).explain()
    assert "frame_q3c_idx" in plan
