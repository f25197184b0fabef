"""The security suite's fixtures: one real stack for the whole package (torn down when its last test ends),
the cast of roles, and the end-of-suite summary (tests/summary.py) of the bad inputs tried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import summary
from tests.integration.conftest import _unavailable
from tests.integration.stack import InfraError, Kafka, PrivatePostgres
from tests.security.harness import Cast, SecurityStack, build_cast


@pytest.fixture(scope="package")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityStack]:
    kafka = Kafka(data_dir=tmp_path_factory.mktemp("security-kafka"))
    postgres = PrivatePostgres()  # the package's own cluster: stopped and removed when its last test ends
    try:
        kafka.start()
        postgres.start()
    except (InfraError, OSError) as exc:
        kafka.stop()
        postgres.drop()
        _unavailable(str(exc))
    stack = SecurityStack(kafka, postgres, tmp_path_factory.mktemp("security-services"))
    try:
        stack.start()
    except InfraError as exc:
        stack.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()
        kafka.stop()
        postgres.drop()


@pytest.fixture(scope="package")
def cast(secure_stack: SecurityStack) -> Cast:
    return build_cast(secure_stack)


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    summary.write(terminalreporter)
