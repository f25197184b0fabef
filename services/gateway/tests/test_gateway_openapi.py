"""One OpenAPI document and /docs for every route, and the pass-through to every service route."""

from __future__ import annotations

import httpx

MEMBERSHIP_SPEC = {
    "openapi": "3.1.0", "info": {"title": "membership", "version": "1"},
    "paths": {
        "/communities/{community_id}/plans": {"post": {
            "operationId": "create_plan", "tags": ["plans"], "summary": "Create a plan",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PlanCreate"}}}},
            "responses": {"201": {"description": "ok"}}}},
        "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {"schemas": {"PlanCreate": {"type": "object", "properties": {"price_fen": {"type": "integer"}}}}},
}


def services(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/openapi.json":
        if request.url.host.startswith("content"):
            raise httpx.ConnectError("down", request=request)
        if request.url.host.startswith("membership"):
            return httpx.Response(200, json=MEMBERSHIP_SPEC)
        return httpx.Response(200, json={"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {}})
    return httpx.Response(201, json={"path": request.url.path})


async def test_one_document_covers_every_route(tmp_path, standalone_gateway):
    async with standalone_gateway(tmp_path, respond=services, upstream_retries=0) as gw:
        document = (await gw.client.get("/openapi.json")).json()
        docs = await gw.client.get("/docs")
        own = gw.app.openapi()  # FastAPI's view of the gateway's own routes

    assert docs.status_code == 200 and "/openapi.json" in docs.text
    operations = [(path, method) for path, item in own["paths"].items() for method in item]
    assert len(operations) > 20
    for path, method in operations:
        assert document["paths"][path][method].get("description"), f"{method} {path} has no docstring"
    for path in ("/webhooks/chat/{connector_id}", "/webhooks/payments/stripe", "/webhooks/payments/wechatpay",
                 "/api/v1/auth/token", "/api/v1/communities/{community_id}/connectors", "/api/v1/ops/quarantine"):
        assert path in document["paths"]
    plan = document["paths"]["/api/v1/membership/communities/{community_id}/plans"]["post"]
    assert plan["tags"] == ["membership: plans"]
    schema_ref = plan["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/membership__PlanCreate"
    assert "membership__PlanCreate" in document["components"]["schemas"]
    assert "/api/v1/membership/healthz" not in document["paths"]
    assert document["x-unavailable-services"] == ["content"]


async def test_service_routes_pass_through_with_the_authenticated_actor(tmp_path, standalone_gateway, member_headers):
    async with standalone_gateway(tmp_path, respond=services) as gw:
        anonymous = await gw.client.post("/api/v1/membership/communities/c-1/plans", json={"price_fen": 100})
        forwarded = await gw.client.post(
            "/api/v1/membership/communities/c-1/plans", json={"price_fen": 100},
            headers={**member_headers(gw.app, "telegram:5"), "X-Actor-Id": "telegram:1"},
        )
        anonymous_read = await gw.client.get("/api/v1/engagement/communities/c-1/leaderboard",
                                             headers={"X-Actor-Id": "telegram:1"})
        public_read = await gw.client.get("/api/v1/content/communities/c-1/posts", headers={"X-Actor-Id": "telegram:1"})
        membership_calls = gw.upstreams["membership"].calls
        engagement_calls = gw.upstreams["engagement"].calls
        content_calls = gw.upstreams["content"].calls

    assert anonymous.status_code == 401
    assert forwarded.status_code == 201
    assert forwarded.json() == {"path": "/communities/c-1/plans"}
    (call,) = [c for c in membership_calls if c.url.path == "/communities/c-1/plans"]
    assert call.headers["x-actor-id"] == "telegram:5"
    # A community's figures are for its members (read_guard); posts are public, the paywall decides.
    assert anonymous_read.status_code == 401
    assert not [c for c in engagement_calls if c.url.path == "/communities/c-1/leaderboard"]
    assert public_read.status_code == 201
    (read,) = [c for c in content_calls if c.url.path == "/communities/c-1/posts"]
    assert "x-actor-id" not in read.headers


def test_gateway_routes_that_forward_are_documented_with_the_service_routes_types():
    from gateway.openapi import merge

    untyped = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
               "responses": {"201": {"description": "Successful Response"}}}
    own = {"openapi": "3.1.0", "info": {"title": "gateway", "version": "1"}, "paths": {
        "/api/v1/communities": {"post": {"operationId": "create_community", "summary": "Create", **untyped}}}}
    membership = {"openapi": "3.1.0", "info": {"title": "membership", "version": "1"}, "paths": {
        "/communities": {"post": {
            "operationId": "create", "summary": "Create (membership)",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommunityIn"}}}},
            "responses": {"201": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/CommunityOut"}}}}}}}},
        "components": {"schemas": {"CommunityIn": {"type": "object"}, "CommunityOut": {"type": "object"}}}}

    document = merge(own, {"membership": membership})

    create = document["paths"]["/api/v1/communities"]["post"]
    assert create["operationId"] == "create_community" and create["summary"] == "Create"
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/membership__CommunityIn"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/membership__CommunityOut"}
    assert "membership__CommunityOut" in document["components"]["schemas"]
