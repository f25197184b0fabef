"""Metrics counted in a transaction count once it commits: never for a rollback, once per call."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import MetaData, text

from qunzhu_common.outbox import count_after_commit


async def test_counted_on_commit_not_on_rollback(sqlite_db) -> None:
    sessions = await sqlite_db(MetaData())
    registry = CollectorRegistry()
    counter = Counter("things", "Things.", ["kind"], registry=registry)

    def value(kind: str) -> float:
        return registry.get_sample_value("things_total", {"kind": kind}) or 0.0

    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await session.execute(text("SELECT 1"))
            count_after_commit(session, counter.labels("a"), 5)
            raise RuntimeError("the batch fails and is retried event by event")
    assert value("a") == 0

    async with sessions() as session, session.begin():
        await session.execute(text("SELECT 1"))
        count_after_commit(session, counter.labels("a"))
        count_after_commit(session, counter.labels("a"))  # two events of one batch: two increments
        count_after_commit(session, counter.labels("b"), 3)
        assert value("a") == 0  # not before the commit
    assert (value("a"), value("b")) == (2, 3)
