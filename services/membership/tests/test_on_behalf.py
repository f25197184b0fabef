"""An operator credential acting on behalf of a person (#17 part 7): membership applies that person's own
rights and records `<key> for <person>` wherever it records who acted."""

from __future__ import annotations

from urllib.parse import parse_qsl

from conftest import OWNER

from qunzhu_common import actor as actors
from qunzhu_common.testing import app_internal_key


def on_behalf(h, method: str, path: str, person: str, via: str = "apikey:k1") -> dict[str, str]:
    path, _, query = path.partition("?")
    return actors.sign(app_internal_key(h.app), actors.Actor(id=person, via=via), method=method, path=path,
                       query=parse_qsl(query))


async def test_what_an_operator_does_for_the_owner_is_recorded_with_its_key(h):
    cid = (await h.community())["id"]
    path = f"/communities/{cid}/members/wecom:spammer/blacklist"
    response = await h.client.post(path, json={"reason": "广告"}, headers=on_behalf(h, "POST", path, OWNER))
    assert response.status_code == 204, response.text
    (changed,) = await h.emitted("blacklist.changed")
    assert changed.data["decided_by"] == f"apikey:k1 for {OWNER}"

    path = f"/communities/{cid}/rules"
    response = await h.client.post(path, json={"text": "不发广告"},
                                   headers=on_behalf(h, "POST", path, OWNER, via="platform-operator"))
    assert response.status_code == 201, response.text
    (published,) = await h.emitted("rules.published")
    assert published.data["published_by"] == f"platform-operator for {OWNER}"


async def test_an_unpaid_join_decided_for_the_owner_names_the_key(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", "wecom:bob")
    (flag,) = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER)
    path = f"/communities/{cid}/unpaid-joins/{flag['id']}/decision"
    response = await h.client.post(path, json={"decision": "keep"}, headers=on_behalf(h, "POST", path, OWNER))
    assert response.status_code == 200, response.text
    assert response.json()["decided_by"] == f"apikey:k1 for {OWNER}"
    (resolved,) = await h.emitted("unpaid_join.resolved")
    assert resolved.data["decided_by"] == f"apikey:k1 for {OWNER}"


async def test_on_behalf_of_someone_without_the_right_is_the_403_they_would_get(h):
    cid = (await h.community())["id"]
    await h.join(cid, "wecom:alice")
    path = f"/communities/{cid}/plans"
    body = {"name": "年费", "price_fen": 100_000, "term_type": "fixed_duration", "duration_days": 365}
    themselves = await h.call("POST", path, "wecom:alice", json=body)
    for_them = await h.client.post(path, json=body, headers=on_behalf(h, "POST", path, "wecom:alice"))
    assert themselves.status_code == for_them.status_code == 403
    assert themselves.json()["detail"] == for_them.json()["detail"]
