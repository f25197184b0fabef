"""Who may read the services' metrics through the public gateway.

Prometheus scrapes each service on its own (internal) port; the gateway's pass-through exists for embedded
mode and for operators, so it answers loopback callers, and anyone else only with the ops token or the
platform operator key.
"""

from __future__ import annotations

import ipaddress

from fastapi import Request

from gateway.auth.principal import same_secret
from gateway.settings import GatewaySettings
from qunzhu_common.errors import Forbidden


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require(request: Request, settings: GatewaySettings) -> None:
    if _is_loopback(request.client and request.client.host):
        return
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and same_secret(settings.ops_token.get_secret_value(), token.strip()):
        return
    if same_secret(settings.admin_api_key.get_secret_value(), request.headers.get("x-api-key")):
        return
    raise Forbidden("metrics are served to loopback callers, or with `Authorization: Bearer <GATEWAY_OPS_TOKEN>`")
