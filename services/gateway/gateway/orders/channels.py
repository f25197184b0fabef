"""How a payment provider's channel plugs into checkout: one object per (provider, channel).

`open` creates the provider's order for a PaymentOrder and answers what the front end needs (a Stripe
Checkout URL, a WeChat Pay code_url, h5_url or the signed wx.requestPayment parameters); it is called again
with the same order when a checkout is retried, so it must be idempotent on `order.id` (Stripe: the
Idempotency-Key; WeChat Pay: out_trade_no). `close` is called when an unpaid order expires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx

from gateway.models import PaymentOrder
from gateway.settings import GatewaySettings
from qunzhu_common.errors import AppError


class ProviderUnavailable(AppError):
    """The provider could not be reached or failed (5xx, timeout): the checkout may be retried."""

    status, slug, title = 502, "payment-provider-unavailable", "Payment provider unavailable"


class ProviderRefused(AppError):
    """The provider refused the order (4xx) or is not configured: retrying the same call will not help."""

    status, slug, title = 502, "payment-provider-refused", "Payment provider refused the order"


@dataclass(frozen=True)
class Checkout:
    """What the caller asked for beyond the order itself."""

    plan_name: str
    payer_openid: str | None = None  # WeChat Pay JSAPI
    client_ip: str | None = None  # WeChat Pay H5 (scene_info.payer_client_ip)


@dataclass(frozen=True)
class Opened:
    provider_order_id: str | None  # Stripe Checkout Session id, WeChat Pay prepay_id
    client: dict[str, Any]  # merged into the checkout answer: checkout_url, code_url, h5_url, jsapi…


@dataclass
class ChannelDeps:
    """What channels may use: settings, one HTTP client, provider clients built once (by name)."""

    settings: GatewaySettings
    http: httpx.AsyncClient
    clients: dict[str, Any] = field(default_factory=dict)
    metrics: Any = None  # GatewayMetrics: orders_total{provider,channel,outcome}

    def count(self, order: PaymentOrder, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.orders.labels(order.provider, order.channel, outcome).inc()


class Channel(Protocol):
    provider: ClassVar[str]
    channel: ClassVar[str]

    def check(self, deps: ChannelDeps, checkout: Checkout) -> None:
        """Refuse (InvalidInput, ProviderRefused) what cannot work before an order is stored."""

    async def open(self, deps: ChannelDeps, order: PaymentOrder, checkout: Checkout) -> Opened: ...

    async def close(self, deps: ChannelDeps, order: PaymentOrder) -> None: ...


CHANNELS: dict[tuple[str, str], Channel] = {}


def register(channel: Channel) -> Channel:
    CHANNELS[(channel.provider, channel.channel)] = channel
    return channel


def channel_of(provider: str, channel: str) -> Channel | None:
    return CHANNELS.get((provider, channel))
