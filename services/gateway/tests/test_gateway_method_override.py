"""POST + X-HTTP-Method-Override: PATCH reaches the service as a PATCH (wx.request has no PATCH); nothing else
may be overridden."""

from __future__ import annotations

import httpx
import pytest


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"method": request.method, "path": request.url.path})


async def test_post_with_the_override_is_forwarded_as_the_patch_it_stands_for(
    tmp_path, standalone_gateway, member_headers
):
    async with standalone_gateway(tmp_path, respond=echo) as gw:
        headers = member_headers(gw.app, "telegram:5")
        answer = await gw.client.post("/api/v1/membership/communities/c-1/members/telegram:5",
                                      json={"display_name": "李一天"},
                                      headers={**headers, "X-HTTP-Method-Override": "patch"})
        calls = gw.upstreams["membership"].calls

    assert answer.status_code == 200 and answer.json()["method"] == "PATCH"
    (call,) = [c for c in calls if c.url.path == "/communities/c-1/members/telegram:5"]
    assert call.method == "PATCH" and call.read() == '{"display_name":"李一天"}'.encode()


@pytest.mark.parametrize(("method", "override"), [("GET", "PATCH"), ("POST", "DELETE"), ("POST", "PUT"),
                                                  ("PUT", "PATCH"), ("POST", "")])
async def test_anything_but_post_to_patch_is_refused_before_it_reaches_a_service(
    tmp_path, standalone_gateway, member_headers, method, override
):
    async with standalone_gateway(tmp_path, respond=echo) as gw:
        answer = await gw.client.request(method, "/api/v1/membership/communities/c-1",
                                         headers={**member_headers(gw.app, "telegram:5"),
                                                  "X-HTTP-Method-Override": override})
        calls = gw.upstreams["membership"].calls

    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("method-not-overridable")
    assert not [c for c in calls if c.url.path.startswith("/communities")]
