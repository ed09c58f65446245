"""Property-based API tests from the served OpenAPI document (schemathesis).

For every operation of ``/api/v1/openapi.json``, generated requests (with
random path parameters, then with the ids of real objects) must get no
server error, and every response must conform to the document (status
code, content type, body schema); no operation that declares security may
accept a request without credentials or with invalid ones (``ignored_auth``).

schemathesis' pytest plugin does not run on pytest 9 (it reads a private
node attribute), so each operation's Hypothesis strategy is driven here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fleet.conftest import Database, FakeClock, prepare_database
from tests.fleet.live import World, build_app, seed, serve

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:
    path = Path(tmp_path_factory.mktemp("schemathesis")) / "ledger.sqlite3"
    prepare_database(path)
    clock = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    world = seed(path, clock)
    with serve(build_app(Database(path, clock))) as url:
        yield url, world


def _real_ids(w: World) -> dict[str, str]:
    # token_id is left random: revoking the test's own key would end the run.
    return {
        "account_id": "acme",
        "device_id": w.ids["device"],
        "site_id": w.ids["site"],
        "room_id": w.ids["room"],
        "contract_id": w.ids["contract"],
        "invitation_id": w.ids["invitation"],
        "ticket_id": w.ids["ticket"],
        "request_id": w.ids["request"],
        "activation_id": w.ids["activation"],
        "user_id": w.ids["user_a_ro"],
        "partner_id": "tsp",
    }


@pytest.mark.slow
def test_every_operation_conforms(served: tuple[str, World]) -> None:
    url, world = served
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json", wait_for_schema=20)
    headers = {"Authorization": f"Bearer {world.tokens['a_admin']}"}
    logout_headers = {"Authorization": f"Bearer {world.tokens['a_ro']}"}

    def _headers_for(case: Any) -> dict[str, str]:
        # Sign-out revokes the token it presents: give it one of its own.
        return logout_headers if case.operation.path.endswith("/auth/logout") else headers

    failures: list[str] = []
    operations = 0
    session = requests.Session()  # keep-alive: one connection for the whole run
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        names = re.findall(r"{(\w+)}", operation.path)
        fixed = {k: v for k, v in _real_ids(world).items() if k in names}
        strategies = [
            operation.as_strategy(),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ]
        if fixed:
            strategies.append(operation.as_strategy(path_parameters=fixed))
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=6,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=url, session=session, headers=_headers_for(case), checks=CHECKS
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            try:
                run()
            except Exception as exc:
                failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:1500])
    session.close()
    assert operations >= 50
    # The run reached the handlers: successes and scoped refusals, not only 4xx validation.
    assert sum(n for code, n in statuses.items() if 200 <= code < 300) >= 40, statuses
    assert statuses.get(404, 0) >= 20, statuses
    assert not failures, "\n\n".join(failures)
