"""The fault suite's own stack: a Kafka broker, a PostgreSQL cluster of its own (the suite restarts it,
so it must not be the shared one) and the four services as processes. Run by `make test-faults`,
kept out of `make test`. The summary of what the suite proved is printed at the end.

A missing broker or database fails the run under CI=true; elsewhere too, unless the developer asks
to skip with QUNZHU_SKIP_INTEGRATION=1 (never honoured under CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import summary
from tests.integration.stack import InfraError, Kafka, PrivatePostgres, Stack

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Heavy (10+ minutes): collected only when asked for by path (`make test-faults`, `pytest
    tests/reliability`) or with QUNZHU_FAULTS=1, never by a plain `pytest tests`."""
    if os.environ.get("QUNZHU_FAULTS") == "1":
        return None
    for arg in config.args:
        target = Path(arg.split("::")[0]).resolve()
        if target == HERE or HERE in target.parents:
            return None
    return True


def _unavailable(reason: str) -> None:
    if os.environ.get("QUNZHU_SKIP_INTEGRATION") == "1" and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"fault-suite infrastructure skipped on request: {reason}")
    pytest.fail(f"fault-suite infrastructure unavailable: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    broker = Kafka(data_dir=tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except (InfraError, OSError) as exc:
        _unavailable(str(exc))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
    except (InfraError, OSError) as exc:
        pg.drop()
        _unavailable(str(exc))
    yield pg
    pg.drop()


@pytest.fixture(scope="session")
def stack(kafka: Kafka, postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    services = Stack(kafka, postgres, tmp_path_factory.mktemp("services"))
    try:
        services.start()
    except InfraError as exc:
        services.stop()
        pytest.fail(str(exc), pytrace=False)
    yield services
    services.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary.write(terminalreporter)
