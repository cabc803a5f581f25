"""Request budgets hold exactly under concurrency; failed authentication slows the address down."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from network.throttles import count_in_window, parse_rate
from tests.network.api_helpers import agent_client, token_client
from tests.network.factories import build_world

URL = "/api/v1/sites"


@pytest.fixture
def world(db):
    cache.clear()
    yield build_world()
    cache.clear()


def test_parse_rate():
    assert parse_rate("120/minute") == (120, 60) and parse_rate("5/s") == (5, 1) and parse_rate("1/day") == (1, 86400)
    with pytest.raises(ValueError, match="N/second"):
        parse_rate("many/minute")


def test_a_counter_window_counts_exactly_from_many_threads(world):
    barrier = threading.Barrier(16)

    def spend(_):
        barrier.wait()
        return [count_in_window("race", 60, now=1_000_000.0)[0] for _ in range(25)]

    with ThreadPoolExecutor(16) as pool:
        counts = sorted(c for batch in pool.map(spend, range(16)) for c in batch)
    assert counts == list(range(1, 401)), "every increment seen once, none lost"
    assert count_in_window("race", 60, now=1_000_060.0)[0] == 1, "the next window starts again"


@pytest.mark.django_db(transaction=True)
def test_sixteen_connections_get_exactly_the_agent_budget(live_server, world):
    """As measured in the issue: 16 concurrent connections against 120/minute let 179-216 through."""
    # An hour's window: the 96 requests take seconds here but up to a minute under the moved
    # clock of CI's second pass, so a minute's window could roll over in the middle.
    with override_settings(DATAS_AGENT_THROTTLE_RATE="50/hour"):
        # Stay inside one window: start right after a boundary if it is close.
        import time
        if time.time() % 3600 > 3540:
            time.sleep(3601 - time.time() % 3600)
        headers = {"Authorization": f"Bearer {world.a_key}"}

        def poll(_):
            with requests.Session() as session:
                return [session.get(f"{live_server.url}{URL}", headers=headers, timeout=30).status_code
                        for _ in range(6)]

        with ThreadPoolExecutor(16) as pool:
            codes = [c for batch in pool.map(poll, range(16)) for c in batch]
    assert codes.count(200) == 50 and codes.count(429) == 16 * 6 - 50


def test_people_have_a_budget_of_their_own(world):
    with override_settings(DATAS_PERSON_THROTTLE_RATE="4/minute"):
        client = token_client(world.a_viewer)
        codes = [client.get(URL).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 200, 429]
        assert token_client(world.b_viewer).get(URL).status_code == 200
        assert agent_client(world.a_key).get(URL).status_code == 200


def test_wrong_keys_are_slowed_down_per_address(world):
    with override_settings(DATAS_AUTH_FAILURES_ALLOWED=3):
        guesser = APIClient(REMOTE_ADDR="203.0.113.7")
        codes = []
        for n in range(6):
            response = guesser.get(URL, HTTP_AUTHORIZATION=f"Bearer dsk_{n:012d}_wrongwrongwrongwrong")
            codes.append(response.status_code)
        assert codes[:3] == [401, 401, 401]
        assert codes[3:] == [429, 429, 429]
        assert int(response["Retry-After"]) >= 1
        # While it waits, even a right key from that address is not checked.
        right = APIClient(REMOTE_ADDR="203.0.113.7").get(URL, HTTP_AUTHORIZATION=f"Bearer {world.a_key}")
        assert right.status_code == 429 and "failed authentication" in right.json()["detail"]
        # Another address is unaffected.
        other = APIClient(REMOTE_ADDR="198.51.100.2").get(URL, HTTP_AUTHORIZATION=f"Bearer {world.a_key}")
        assert other.status_code == 200


def test_the_wait_doubles_with_every_further_failure(world):
    from network.throttles import record_failure

    class Request:
        META = {"REMOTE_ADDR": "192.0.2.1"}

    with override_settings(DATAS_AUTH_FAILURES_ALLOWED=2):
        waits = [record_failure(Request) for _ in range(7)]
    assert waits == [0, 0, 1, 2, 4, 8, 16]
