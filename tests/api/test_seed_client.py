"""The seed design's minimal client, as written, against the live server (a contract test).

The design document's smallest agent polls ``GET /api/v1/targets?site_id=&count=10`` with a
bearer key, reads ``resp.json()['targets']`` and per row ``target_id``, ``name``, ``ra_deg``,
``dec_deg``, ``exposure_sec`` and ``filter`` (with defaults), then POSTs a flat record per
target: no ``observation_id``, ``observed_at`` from astropy's ``Time.now().isot`` (no time zone),
``magnitude``, ``mag_error`` and ``comparison_stars`` as a list of star ids. It never sends a
heartbeat. All of that must work unchanged, and store what it sends.
"""
from __future__ import annotations

import pytest
import requests
from astropy.time import Time

from observations.models import Observation
from tests.agent.test_loop import overhead
from tests.network.factories import make_network, make_site_with_key, make_target
from tests.scheduling.helpers import same_sky_in_the_dark

pytestmark = pytest.mark.django_db(transaction=True)


def seed_client_cycle(API_URL: str, SITE: int, KEY: str) -> list:  # noqa: N803 - the seed's own names
    """The seed document's client loop, one cycle, unmodified but for returning the replies."""
    headers = {"Authorization": f"Bearer {KEY}"}
    resp = requests.get(f"{API_URL}/api/v1/targets", params={"site_id": SITE, "count": 10}, headers=headers,
                        timeout=30)
    replies = []
    for target in resp.json()["targets"]:
        print(f"Observing {target['name']} at {target['ra_deg']:.4f} {target['dec_deg']:.4f}")
        obs = {
            "target_id": target["target_id"],
            "site_id": SITE,
            "observed_at": Time.now().isot,
            "exposure_sec": target.get("exposure_sec", 60),
            "filter": target.get("filter", "V"),
            "magnitude": 12.345,
            "mag_error": 0.021,
            "comparison_stars": ["000-BBC-123", "000-BBC-456"],
            "airmass": 1.2,
        }
        replies.append(requests.post(f"{API_URL}/api/v1/observations", json=obs, headers=headers, timeout=30))
    return replies


@pytest.fixture
def seed_site(live_server, monkeypatch, settings):
    """A site that never reports weather, with two targets overhead in its night."""
    dark = same_sky_in_the_dark(-30.24, -70.74)
    monkeypatch.setattr("scheduling.passes._now", lambda: dark)
    network = make_network("Seed network")
    site, key = make_site_with_key(network, latitude=-30.24, longitude=-70.74, elevation_m=2200,
                                   timezone="America/Santiago", filters=["B", "V", "R"])
    for minutes, name in ((0, "Zenith var"), (20, "East var")):
        ra, dec = overhead(minutes_east=minutes)
        make_target(network, name=name, ra_deg=ra, dec_deg=dec, magnitude=11.0, priority=5.0,
                    required_filters=["V"], exposure_sec=45, min_observations=500)
    return live_server.url, site, key


def test_the_seed_client_runs_unmodified_and_its_magnitudes_are_stored(seed_site):
    url, site, key = seed_site
    listed = requests.get(f"{url}/api/v1/targets", params={"site_id": site.pk, "count": 10},
                          headers={"Authorization": f"Bearer {key}"}, timeout=30).json()
    assert listed["weather"].startswith("unknown") and listed["reason"] == ""
    assert [t["filter"] for t in listed["targets"]] == ["V", "V"]
    assert [t["exposure_sec"] for t in listed["targets"]] == [45.0, 45.0]

    replies = seed_client_cycle(url, site.pk, key)
    assert [r.status_code for r in replies] == [201, 201], [r.text for r in replies]
    stored = Observation.objects.filter(site=site).order_by("target__name")
    assert [(o.target.name, o.filter, o.exposure_sec, o.magnitude, o.magnitude_error) for o in stored] == [
        ("East var", "V", 45.0, 12.345, 0.021), ("Zenith var", "V", 45.0, 12.345, 0.021)]
    assert [s["name"] for s in stored[0].comparison_stars] == ["000-BBC-123", "000-BBC-456"]


def test_a_retried_seed_record_is_stored_once(seed_site):
    url, site, key = seed_site
    target = site.network.targets.first()
    obs = {"target_id": target.pk, "site_id": site.pk, "observed_at": Time.now().isot, "exposure_sec": 60,
           "filter": "V", "magnitude": 12.0, "mag_error": 0.03, "comparison_stars": ["A"], "airmass": 1.1}
    headers = {"Authorization": f"Bearer {key}"}
    first = requests.post(f"{url}/api/v1/observations", json=obs, headers=headers, timeout=30)
    again = requests.post(f"{url}/api/v1/observations", json=obs, headers=headers, timeout=30)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["observation_id"] == again.json()["observation_id"]
    assert Observation.objects.filter(site=site).count() == 1
