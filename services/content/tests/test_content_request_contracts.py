"""Issue #15: a request is constrained exactly as the event it causes, so what the contract would refuse is a
422 problem at the door (never a 500 when the outbox row is written), and nothing is written.

- a post's or approved summary's `level` → post.published (`Level`: beginner, intermediate, advanced);
- a session's guest, host and groups → session.announced (`PersonId`, `GroupId`, each target group too);
- a broadcast's or schedule's audience groups → chat.action.requested / broadcast.delivered (`GroupId`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from content.models.base import metadata
from qunzhu_common.testing_contracts import identity_fields_off_contract

START = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
BAD_GROUPS = ["g", "WeCom:g", "wecom:", "wecom:" + "g" * 200]
BAD_PEOPLE = ["guest", "wecom:a b", "WeCom:guest", "wecom:a\u0085b", "wecom:" + "1" * 200]
BAD_LEVELS = ["expert", "Beginner", "", 1]
# Stricter than GroupId on purpose: the platform prefix goes into a 20-character column.
STRICTER = {"PUT /communities/{community_id}/groups: group_id"}


@pytest.fixture
async def c(start_content_at, bus, seed_community, clock):
    async with start_content_at() as content:
        yield await seed_community(bus, content, clock, groups=3)


def _session(c, **fields: Any) -> dict:
    return {"topic": "从 0 到 1 做社群", "guest_id": c.guest, "host_id": c.admin, "starts_at": START.isoformat(),
            "ends_at": (START + timedelta(minutes=90)).isoformat(), "source_group_id": c.groups[0],
            "target_group_ids": c.groups[1:], **fields}


def _audience(c, path: str, group: str) -> tuple[str, str, dict]:
    body: dict[str, Any] = {"text": "今晚八点分享会", "audience": {"kind": "groups", "group_ids": [c.groups[0], group]}}
    if path == "/schedules":
        body["starts_at"] = (START + timedelta(days=1)).isoformat()
    return "POST", path, body


# name → (values the contract refuses, the field the 422 names, (method, path, body) for one value).
CASES: dict[str, tuple[list[Any], str, Any]] = {
    "post level": (BAD_LEVELS, "level", lambda c, v: ("POST", "/posts", {"title": "增长复盘", "level": v})),
    "session guest": (BAD_PEOPLE, "guest_id", lambda c, v: ("POST", "/sessions", _session(c, guest_id=v))),
    "session host": (BAD_PEOPLE, "host_id", lambda c, v: ("POST", "/sessions", _session(c, host_id=v))),
    "session source group": (BAD_GROUPS, "source_group_id",
                             lambda c, v: ("POST", "/sessions", _session(c, source_group_id=v))),
    "session target group": (BAD_GROUPS, "target_group_ids",
                             lambda c, v: ("POST", "/sessions", _session(c, target_group_ids=[c.groups[1], v]))),
    "broadcast audience": (BAD_GROUPS, "group_ids", lambda c, v: _audience(c, "/broadcasts", v)),
    "schedule audience": (BAD_GROUPS, "group_ids", lambda c, v: _audience(c, "/schedules", v)),
}
PARAMS = [pytest.param(name, bad, id=f"{name}-{n}") for name, case in CASES.items() for n, bad in enumerate(case[0])]


async def _counts(c) -> dict[str, int]:
    """Rows per table, outbox included: a refused request leaves every one unchanged."""
    async with c.content.app.state.runtime.session_maker() as session:
        return {t.name: await session.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}


def _assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(field in map(str, error["loc"]) for error in response.json()["errors"]), response.text


async def test_every_request_field_naming_a_person_or_group_has_the_contract_type(c):
    assert set(identity_fields_off_contract(c.content.app.openapi())) <= STRICTER


@pytest.mark.parametrize(("name", "bad"), PARAMS)
async def test_a_body_the_events_would_refuse_is_a_422_and_nothing_is_written(c, name, bad):
    _, field, request = CASES[name]
    method, path, body = request(c, bad)
    before = await _counts(c)
    _assert_refused(await c.post(path, body, method=method), field)
    assert await _counts(c) == before


@pytest.mark.parametrize("bad", BAD_LEVELS)
async def test_changing_a_post_or_approving_a_summary_with_a_level_outside_the_contract_is_a_422(c, bad):
    post = (await c.post("/posts", {"title": "增长复盘", "level": "beginner"})).json()
    session = (await c.post("/sessions", _session(c))).json()
    before = await _counts(c)
    _assert_refused(await c.post(f"/posts/{post['id']}", {"level": bad}, method="PATCH"), "level")
    _assert_refused(await c.post(f"/sessions/{session['id']}/summary/approve", {"level": bad}), "level")
    assert await _counts(c) == before
    assert (await c.post(f"/posts/{post['id']}", {"level": "advanced"}, method="PATCH")).json()["level"] == "advanced"
