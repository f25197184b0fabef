"""Integration fixtures: real Kafka (a broker of the test run's own), real PostgreSQL, real processes.

A missing broker or database fails the run under CI=true; elsewhere too, unless the developer asks
to skip with QUNZHU_SKIP_INTEGRATION=1 (never honoured under CI).

The run stops every server it starts: the broker, and a PostgreSQL cluster of the run's own (own directory,
own port; stopped and removed at the end, so nothing stays running and `make up`'s cluster is not touched).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.integration.stack import InfraError, Kafka, PrivatePostgres, Stack, run_script


def _unavailable(reason: str) -> None:
    if os.environ.get("QUNZHU_SKIP_INTEGRATION") == "1" and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"integration infrastructure skipped on request: {reason}")
    pytest.fail(f"integration infrastructure unavailable: {reason}", pytrace=False)


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


@pytest.fixture
def fresh_database(postgres: PrivatePostgres) -> Iterator[Callable[[str], str]]:
    """`fresh_database(tag)`: the asyncpg URL of a new, empty database on the run's cluster, dropped after the test."""
    created: list[str] = []

    def make(tag: str) -> str:
        name = f"{postgres.prefix}_{tag}_{uuid.uuid4().hex[:8]}"
        run_script("postgres.sh", "createdb", name, env=postgres.env)
        created.append(name)
        return f"postgresql+asyncpg://{postgres.user}:{postgres.password}@127.0.0.1:{postgres.port}/{name}"

    yield make
    for name in created:
        run_script("postgres.sh", "dropdb", name, env=postgres.env)


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
