"""FastAPI dependencies shared by services: the request's transaction and the outbox writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from qunzhu_common.outbox import OutboxWriter
from qunzhu_common.service import runtime_of
from qunzhu_common.transaction_retry import wants_writer


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed when the route returns, rolled back if it raises.

    This is the only place that commits: service functions flush at most. A GET or HEAD starts on the read
    pool (embedded mode: a WAL snapshot that never waits for the writer, issue #19); should it write after
    all, SQLite refuses the statement and TransactionRetryMiddleware runs the request again on the writer.
    """
    runtime = runtime_of(request)
    maker = runtime.session_maker
    if request.method in ("GET", "HEAD") and not wants_writer(request.scope):
        maker = runtime.read_session_maker
    async with maker() as session, session.begin():
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only transaction (a consistent snapshot) for routes that only read: on SQLite it comes from
    the read pool and never waits for the writer; it is rolled back at the end, never committed."""
    async with runtime_of(request).read_session_maker() as session:
        yield session  # closing the session rolls its snapshot back


def get_outbox(request: Request) -> OutboxWriter:
    return runtime_of(request).outbox


# scope="function": commit before the response is sent, so a 2xx means the data is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
OutboxDep = Annotated[OutboxWriter, Depends(get_outbox)]
