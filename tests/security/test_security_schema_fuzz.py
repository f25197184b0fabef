"""Part 5 — fuzzing: schemathesis generates requests for every operation of the gateway's aggregated OpenAPI
document (its own routes and every service's, through the gateway) and sends them to the real processes
as community A's owner (so requests get past authentication into the handlers). No answer may be a 5xx,
and every documented response must match its schema. Bounded: a few examples per operation.

Runs last in the package: it may change community A at random (it is the owner), which no later test reads.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests import summary
from tests.security.harness import SecurityStack

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 3
# The same cases every run (CI must not turn red on a new random draw); QUNZHU_FUZZ_RANDOM=1 explores.
DERANDOMIZE = os.environ.get("QUNZHU_FUZZ_RANDOM") != "1"


@pytest.fixture(scope="module")
def gateway_schema(secure_stack: SecurityStack):
    document = httpx.get(f"{secure_stack.gateway}/openapi.json", timeout=30).json()
    assert not document.get("x-unavailable-services"), document.get("x-unavailable-services")
    return schemathesis.openapi.from_dict(document)


def test_no_server_error_and_every_response_matches_its_schema(secure_stack, cast, gateway_schema):
    """Every operation, a few generated cases each (schemathesis' pytest plugin does not run on pytest 9:
    the operations are driven here with their Hypothesis strategies)."""
    failures: dict[str, str] = {}
    sent = 0
    for result in gateway_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None, derandomize=DERANDOMIZE)
        def fuzz(case) -> None:  # noqa: ANN001
            nonlocal sent
            if "community_id" in (case.path_parameters or {}):
                case.path_parameters["community_id"] = cast.a.id  # a real community: deeper than a 404
            sent += 1
            case.call_and_validate(base_url=secure_stack.gateway, headers=cast.headers["owner"],
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            fuzz()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every operation gets its turn; failures are reported together
            failures[operation.label] = " ".join(str(exc).split())[:600] or repr(exc)
    summary.bad_inputs("fuzzed request (schemathesis)", sent)
    assert sent > 100
    assert not failures, "\n".join(f"{label}: {why}" for label, why in sorted(failures.items()))
