"""Issue #15: a request names people and chat groups exactly as the events it causes do (`PersonId`, `GroupId`).

A group id the contract would refuse used to be stored and then break `lottery.opened`, `activity.participated`
or the bot's `chat.action.requested` with a 500 (at once, or at the first vote or sign-up); a person id with a
space or no platform went into the ledger and the lottery's newline-joined entrant list. Now both are a 422
problem at the door, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from engagement.models.base import metadata
from qunzhu_common.testing_contracts import identity_fields_off_contract

GROUP = "telegram:-100"
A = "telegram:1"
# Each refused by GroupId / PersonId in qunzhu_common.events.contracts.identity.
BAD_GROUPS = ["-100", "Telegram:-100", "telegram:", "telegram:" + "1" * 200]
BAD_PEOPLE = ["alice", "telegram:a b", "telegram:", "WeCom:alice", "telegram:a\u0085b", "telegram:" + "1" * 200]


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


# The smallest valid body of each route that takes a `group_id` ('' = any group where the route allows it).
GROUP_BODIES: dict[str, Callable[[], dict[str, Any]]] = {
    "lotteries": lambda: {"title": "周五福利夜", "closes_at": _in(2)},
    "polls": lambda: {"question": "下次选哪个主题？", "options": ["增长", "定价"], "closes_at": _in(2)},
    "surveys": lambda: {"title": "满意度", "questions": [{"kind": "scale", "text": "满意度"}]},
    "chains": lambda: {"title": "读书会"},
    "campaigns": lambda: {"title": "满 400 人发红包", "trigger": "group_size", "threshold": 400, "reward_fen": 50000},
    "meetups": lambda: {"title": "线下聚会", "venue": "咖啡馆", "capacity": 10, "starts_at": _in(20),
                        "ends_at": _in(23)},
    "challenges": lambda: {"title": "21天早起", "starts_on": date.today().isoformat()},
}

# Routes that take a `person_id`: (collection, what to post on one of its items, the rest of the body).
PERSON_ROUTES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "vote": ("polls", "votes", {"choices": [1]}),
    "survey response": ("surveys", "responses", {"answers": [4]}),
    "chain sign-up": ("chains", "signups", {}),
    "meetup registration": ("meetups", "registrations", {}),
    "meetup cancellation": ("meetups", "cancellations", {}),
    "meetup code": ("meetups", "codes", {}),
    "lottery entry": ("lotteries", "entries", {}),
    "homework submission": ("assignments", "submissions", {"content": "第三周作业"}),
}


async def _counts(engagement) -> dict[str, int]:
    """Rows per table, outbox included: a refused request leaves every one unchanged."""
    async with engagement.runtime.session_maker() as session:
        return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in map(str, error["loc"]) for error in response.json()["errors"]), response.text


async def _community(engagement) -> str:
    cid = await engagement.community()
    await engagement.member(cid, A)
    return cid


async def _create(engagement, cid: str, collection: str, **fields: Any) -> dict:
    body = GROUP_BODIES[collection]() if collection in GROUP_BODIES else {"title": "第三周作业"}
    response = await engagement.client.post(f"/communities/{cid}/{collection}", json={**body, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_every_request_field_naming_a_person_or_group_has_the_contract_type(engagement):
    assert identity_fields_off_contract(engagement.app.openapi()) == []


@pytest.mark.parametrize("bad", BAD_GROUPS)
@pytest.mark.parametrize("collection", sorted(GROUP_BODIES))
async def test_a_group_id_the_events_would_refuse_is_a_422_and_nothing_is_written(engagement, collection, bad):
    cid = await _community(engagement)
    before = await _counts(engagement)
    response = await engagement.client.post(f"/communities/{cid}/{collection}",
                                            json={**GROUP_BODIES[collection](), "group_id": bad})
    _assert_refused(response, "group_id")
    assert await _counts(engagement) == before
    # The same body with a contract group id, or none, is accepted.
    assert (await _create(engagement, cid, collection, group_id=GROUP))["group_id"] == GROUP
    assert (await _create(engagement, cid, collection, group_id=""))["group_id"] in ("", None)


@pytest.mark.parametrize("bad", BAD_PEOPLE)
@pytest.mark.parametrize("route", sorted(PERSON_ROUTES))
async def test_a_person_id_the_events_would_refuse_is_a_422_and_nothing_is_written(engagement, route, bad):
    collection, action, rest = PERSON_ROUTES[route]
    cid = await _community(engagement)
    item = await _create(engagement, cid, collection, **({"group_id": GROUP} if collection in GROUP_BODIES else {}))
    url = f"/communities/{cid}/{collection}/{item['id']}/{action}"
    before = await _counts(engagement)
    _assert_refused(await engagement.client.post(url, json={"person_id": bad, **rest}), "person_id")
    assert await _counts(engagement) == before
    if action not in ("cancellations", "codes"):  # these need a sign-up first: the others check the valid body
        accepted = await engagement.client.post(url, json={"person_id": A, **rest})
        assert accepted.status_code in (200, 201), accepted.text
