"""The fuzz step: schemathesis sends the requests the app's own /openapi.json allows, and many it does not.

Every generated request carries a valid API key (the key check itself is tested in tests/service/web/api), so
the bodies reach validation, the contact upsert and the planner. Each answer must be no 5xx and have a status
code, content type, headers and body that the schema documents. Every operation of the schema is fuzzed, with
data that fits it and data that does not, MAX_EXAMPLES each, which keeps the run under a minute. A finding gets
its own regression test, as an explicit example in the tests of the route it is about.

The cases are drawn from schemathesis' strategies inside the test, so the app runs on the `db` fixture
(both engines); its pytest plugin's lazy fixture loader does not run under pytest 9.
"""

from __future__ import annotations

from dataclasses import replace

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.container import Container, build_container
from service.web.app import create_app
from tests.fixtures.app import API_KEY

MAX_EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SECRET_KEY = "fuzz-secret-key-0123456789-abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_every_generated_request_gets_a_documented_answer(container: Container) -> None:
    # With NPS_SECRET_KEY the chart route checks each link (without it, it refuses them all unread).
    container = build_container(replace(container.settings, secret_key=SECRET_KEY), db=container.db)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(container), headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = {f"{operation.method.upper()} {operation.path}" for operation in operations}
    assert {"POST /api/v1/contacts", "POST /api/v1/events", "GET /healthz", "GET /charts/trend.png"} <= fuzzed

    for operation in operations:
        takes_input = bool(list(operation.iter_parameters())) or bool(list(operation.body))
        for mode in (
            (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,)
        ):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def answers_as_documented(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=AUTH, checks=CHECKS)

            answers_as_documented()
