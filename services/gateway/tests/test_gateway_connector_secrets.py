"""Connector secrets are checked for their platform's shape at registration and at rotation (422 problem)."""

from __future__ import annotations

import base64
import os

import pytest

COMMUNITY = "c-reading"
WHSEC = "whsec_" + base64.b64encode(os.urandom(24)).decode()
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")


def url(*parts: str) -> str:
    return "/".join([f"/api/v1/communities/{COMMUNITY}/connectors", *parts])


async def register(gw, headers, platform: str, secrets: dict):
    return await gw.client.post(url(), headers=headers, json={
        "platform": platform, "groups": [], "secrets": secrets})


@pytest.mark.parametrize(("platform", "secrets"), [
    ("generic", {"signing_secrets": ["not-base64!!"]}),
    ("generic", {"signing_secrets": ["whsec_not-base64!!"]}),
    ("generic", {"signing_secrets": ["whsec_" + base64.b64encode(b"too short").decode()]}),
    ("generic", {"signing_secrets": ["whsec_" + base64.b64encode(os.urandom(65)).decode()]}),
    ("generic", {"signing_secrets": [WHSEC], "outbound_secret": "whsec_AAAA"}),
    ("wecom", {"token": "t", "encoding_aes_key": "!" * 43}),
    ("wecom", {"token": "t", "encoding_aes_key": AES_KEY[:42]}),
    ("wecom", {"token": "t", "encoding_aes_key": AES_KEY[:42] + "-"}),
    ("telegram", {"bot_token": "123456:bot-token", "secret_token": "has spaces in it!!"}),
    ("telegram", {"bot_token": "123456:bot-token", "secret_token": "x" * 257}),
    ("onebot", {"secret": "short", "self_id": "3889000001"}),
    ("onebot", {"secret": "s" * 20, "self_id": "not-a-qq-number"}),
    ("onebot", {"secret": "s" * 20, "self_id": "3889000001", "api_base": "ftp://127.0.0.1"}),
    ("qq", {"app_id": "102000001"}),
    ("qq", {"app_id": "app", "app_secret": "qqbotsecret"}),
])
async def test_a_secret_the_connector_could_never_use_is_refused(gateway, admin_headers, platform, secrets):
    response = await register(gateway, admin_headers, platform, secrets)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_well_formed_secrets_are_accepted_and_a_bad_rotation_is_refused(gateway, admin_headers):
    generic = await register(gateway, admin_headers, "generic", {
        "signing_secrets": [WHSEC, "whsec_" + base64.b64encode(os.urandom(64)).decode()]})
    wecom = await register(gateway, admin_headers, "wecom", {"token": "t", "encoding_aes_key": AES_KEY})
    telegram = await register(gateway, admin_headers, "telegram",
                              {"bot_token": "123456:bot-token", "secret_token": "Ab_-" * 4})
    assert [generic.status_code, wecom.status_code, telegram.status_code] == [201, 201, 201], generic.text

    rotated = await gateway.client.patch(url(generic.json()["id"]), headers=admin_headers,
                                         json={"secrets": {"signing_secrets": ["not-base64!!"]}})
    assert rotated.status_code == 422, rotated.text
    assert rotated.headers["content-type"].startswith("application/problem+json")
    assert rotated.json()["errors"][0]["loc"][:3] == ["body", "secrets", "signing_secrets"]
    fine = await gateway.client.patch(url(wecom.json()["id"]), headers=admin_headers,
                                      json={"secrets": {"token": "t2", "encoding_aes_key": AES_KEY}})
    assert fine.status_code == 200, fine.text


async def test_the_openapi_shows_each_platforms_secret_fields(gateway):
    """A client learns the secrets a platform needs from the schema (one per platform, by `platform`)."""
    from gateway.connectors.schemas import SECRET_MODELS

    document = (await gateway.client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def resolve(schema: dict) -> dict:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    post = document["paths"]["/api/v1/communities/{community_id}/connectors"]["post"]
    body = resolve(post["requestBody"]["content"]["application/json"]["schema"])
    assert body["discriminator"]["propertyName"] == "platform"
    mapping = body["discriminator"]["mapping"]
    assert set(mapping) == set(SECRET_MODELS)
    assert sorted(o["$ref"] for o in body["oneOf"]) == sorted(mapping.values())
    required = {}
    for platform, ref in mapping.items():
        variant = resolve({"$ref": ref})
        assert variant["properties"]["platform"]["const"] == platform
        assert {"platform", "secrets"} <= set(variant["required"])
        secrets = resolve(variant["properties"]["secrets"])
        assert secrets["additionalProperties"] is False
        assert all(p.get("description") for p in secrets["properties"].values()), platform
        required[platform] = set(secrets["required"])
    assert required == {"generic": {"signing_secrets"}, "telegram": {"bot_token", "secret_token"},
                        "wecom": {"token", "encoding_aes_key"}, "onebot": {"secret", "self_id"},
                        "qq": {"app_id", "app_secret"}}
    patch = document["paths"]["/api/v1/communities/{community_id}/connectors/{connector_id}"]["patch"]
    update = resolve(patch["requestBody"]["content"]["application/json"]["schema"])
    assert "TelegramSecrets for telegram" in update["properties"]["secrets"]["description"]


async def test_a_wrong_platform_or_another_platforms_secrets_are_refused(gateway, admin_headers):
    unknown = await register(gateway, admin_headers, "myspace", {"signing_secrets": [WHSEC]})
    crossed = await register(gateway, admin_headers, "telegram", {"signing_secrets": [WHSEC]})
    missing = await gateway.client.post(url(), headers=admin_headers, json={"secrets": {"signing_secrets": [WHSEC]}})
    for response in (unknown, crossed, missing):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    # Locations are paths in the body sent (no union tag), as a rotation's are.
    assert {tuple(e["loc"]) for e in crossed.json()["errors"]} == {
        ("body", "secrets", "bot_token"), ("body", "secrets", "secret_token"), ("body", "secrets", "signing_secrets")}
    bad_key = await register(gateway, admin_headers, "generic", {"signing_secrets": ["whsec_AAAA"]})
    assert bad_key.json()["errors"][0]["loc"] == ["body", "secrets", "signing_secrets", "0"]
    assert "24–64" in bad_key.json()["errors"][0]["msg"]
