"""Fuzz every API operation from its own OpenAPI schema (schemathesis): no input is a 5xx, and
every answer is one the schema describes (status code, content type, body).

Runs as a person with a manager's personal token and as a site agent, each operation with a
bounded number of generated requests, against the real database of the run (PostgreSQL in
`make test`'s first pass). A failure prints the request that reproduces it.
"""
from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from network.services import issue_user_token
from tests.network.factories import build_world, make_observation

pytestmark = pytest.mark.fuzz
EXAMPLES = 10
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture
def callers(db):
    # As Django's test client does: the WSGI handler must not close the test's connection
    # (and with it the transaction that holds the fixtures) at the end of each request.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    cache.clear()
    world = build_world()
    make_observation(world.a_target, world.a_site)
    yield {"person": f"Bearer {issue_user_token(world.a_manager).plaintext}", "agent": f"Bearer {world.a_key}"}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.parametrize("caller", ["person", "agent"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@override_settings(DATAS_AGENT_THROTTLE_RATE="1000000/minute", DATAS_PERSON_THROTTLE_RATE="1000000/minute",
                   DATAS_AUTH_FAILURES_ALLOWED=1000000)
def test_no_generated_request_is_a_server_error(case, callers, caller):
    case.call_and_validate(headers={"Authorization": callers[caller]},
                          checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                  response_schema_conformance])
