"""Reconciliation with WeChat Pay: the daily trade bill (`GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`
→ a signed answer with download_url and the file's SHA1 → the CSV bill) against our orders and refunds.

WeChat Pay cuts its bills at 00:00 China time and publishes yesterday's after 10:00, so only the China days
wholly inside the window are compared. The bill's amounts are in yuan ("999.00"); every field of a data row
starts with a backquote; columns are found by their header name, not their position. Payment rows
(交易状态 SUCCESS) are compared with orders (商户订单号 = our order id) and payment references (微信订单号);
refund rows (交易状态 REFUND) with the refunds recorded by out_refund_no (商户退款单号).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import ClassVar
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import PaymentOrder, PaymentRef, ProviderRefund
from gateway.orders.channels import ChannelDeps, ProviderRefused, ProviderUnavailable
from gateway.orders.reconcile import Difference, paid_orders, register_reconciler
from gateway.orders.wechatpay_pay import CHINA, call
from gateway.refunds import wechatpay_api
from gateway.refunds.wechatpay_api import Merchant

PROVIDER = "wechatpay"


@dataclass(frozen=True)
class BillRow:
    kind: str  # payment or refund
    transaction_id: str
    out_trade_no: str
    amount_fen: int | None  # the order amount (payments) or the refund amount (refunds)
    out_refund_no: str = ""
    refund_status: str = ""


def fen(yuan: str) -> int | None:
    try:
        return int((Decimal(yuan) * 100).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def parse_bill(text: str) -> list[BillRow]:
    """The detail rows of a trade bill (the summary header and line at the end are left out)."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip() for h in next(csv.reader([lines[0]]))]
    rows: list[BillRow] = []
    for values in csv.reader(lines[1:]):
        if not values or not values[0].startswith("`"):
            break  # the summary block: 总交易单数,…
        field = {name: value.strip().lstrip("`") for name, value in zip(header, values, strict=False)}
        state = field.get("交易状态", "")
        if state == "REFUND":
            rows.append(BillRow("refund", field.get("微信订单号", ""), field.get("商户订单号", ""),
                                fen(field.get("退款金额", "")), out_refund_no=field.get("商户退款单号", ""),
                                refund_status=field.get("退款状态", "")))
        elif state == "SUCCESS":
            rows.append(BillRow("payment", field.get("微信订单号", ""), field.get("商户订单号", ""),
                                fen(field.get("订单金额") or field.get("应结订单金额", ""))))
    return rows


def bill_days(start: datetime, end: datetime) -> list[date]:
    """The China days wholly inside [start, end)."""
    first = start.astimezone(CHINA).date()
    if datetime.combine(first, time(), CHINA) < start:
        first += timedelta(days=1)
    days = []
    while datetime.combine(first + timedelta(days=1), time(), CHINA) <= end:
        days.append(first)
        first += timedelta(days=1)
    return days


async def fetch_bill(deps: ChannelDeps, merchant: Merchant, day: date) -> str:
    try:
        answer = await call(deps, merchant, f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL",
                            method="GET")
    except ProviderRefused as exc:
        if exc.extra.get("code") == "NO_STATEMENT_EXIST":  # no trade that day
            return ""
        raise
    url = str(answer.get("download_url") or "")
    base, link = urlsplit(merchant.api_base), urlsplit(url)
    if (link.scheme, link.netloc) != (base.scheme, base.netloc):  # only ever fetched from WeChat Pay itself
        raise ProviderUnavailable(f"wechatpay: unexpected download_url {url[:200]!r}")
    target = link.path + (f"?{link.query}" if link.query else "")
    response = await deps.http.get(url, headers={
        "Authorization": wechatpay_api.authorization(merchant, "GET", target, b""), "User-Agent": "qunzhu-gateway"})
    if not response.is_success:
        raise ProviderUnavailable(f"wechatpay {response.status_code}: the bill of {day} could not be downloaded")
    expected = str(answer.get("hash_value") or "").lower()
    if str(answer.get("hash_type") or "SHA1").upper() == "SHA1" and expected \
            and hashlib.sha1(response.content).hexdigest() != expected:  # noqa: S324 - WeChat Pay's own check
        raise ProviderUnavailable(f"wechatpay: the bill of {day} does not match its SHA1")
    return response.content.decode("utf-8-sig", "replace")


class WechatpayReconciler:
    provider: ClassVar[str] = PROVIDER
    kinds: ClassVar[tuple[str, ...]] = (
        "payment_missing_here", "payment_missing_at_provider", "payment_amount_differs",
        "refund_missing_here", "refund_missing_at_provider", "refund_held",
    )

    def configured(self, deps: ChannelDeps) -> bool:
        return isinstance(deps.clients.get(PROVIDER), Merchant)

    async def differences(self, session: AsyncSession, deps: ChannelDeps, start: datetime, end: datetime
                          ) -> list[Difference]:
        merchant = deps.clients[PROVIDER]
        days = bill_days(start, end)
        if not days:
            return []
        rows = [row for day in days for row in parse_bill(await fetch_bill(deps, merchant, day))]
        since = datetime.combine(days[0], time(), CHINA)
        until = datetime.combine(days[-1] + timedelta(days=1), time(), CHINA)
        return [*await self._payments(session, [r for r in rows if r.kind == "payment"], since, until),
                *await self._refunds(session, [r for r in rows if r.kind == "refund"], since, until)]

    async def _payments(self, session: AsyncSession, rows: list[BillRow], since: datetime, until: datetime
                        ) -> list[Difference]:
        found: list[Difference] = []
        trade_nos = [r.out_trade_no for r in rows if r.out_trade_no]
        ids = [r.transaction_id for r in rows if r.transaction_id]
        orders = {o.id: o for o in (await session.execute(select(PaymentOrder).where(
            PaymentOrder.provider == PROVIDER, PaymentOrder.id.in_(trade_nos)))).scalars().all()} if trade_nos else {}
        refs = {r.payment_id: r for r in (await session.execute(select(PaymentRef).where(
            PaymentRef.payment_id.in_(ids)))).scalars().all()} if ids else {}
        for row in rows:
            order, ref = orders.get(row.out_trade_no), refs.get(row.transaction_id)
            if order is None and ref is None:
                found.append(Difference("payment_missing_here", row.transaction_id or row.out_trade_no,
                                        f"WeChat Pay's bill has {row.amount_fen} fen for {row.out_trade_no}; "
                                        "no payment or order here"))
                continue
            ours = order.amount_fen if order is not None else ref.amount_fen if ref is not None else None
            if order is not None and order.status not in ("paid", "review", "refunded"):
                found.append(Difference("payment_missing_here", row.transaction_id or order.id,
                                        f"order {order.id} is {order.status} here; WeChat Pay's bill says paid"))
            elif ours is not None and row.amount_fen is not None and ours != row.amount_fen:
                found.append(Difference("payment_amount_differs", row.transaction_id,
                                        f"WeChat Pay {row.amount_fen} fen, here {ours}"))
        billed = set(trade_nos) | set(ids)
        for order in await paid_orders(session, PROVIDER, since, until):
            if order.id not in billed and order.provider_payment_id not in billed:
                found.append(Difference("payment_missing_at_provider", order.provider_payment_id or order.id,
                                        f"order {order.id} is {order.status} here; not in WeChat Pay's bill"))
        return found

    async def _refunds(self, session: AsyncSession, rows: list[BillRow], since: datetime, until: datetime
                       ) -> list[Difference]:
        found: list[Difference] = []
        keys = [r.out_refund_no for r in rows if r.out_refund_no]
        recorded = {r.refund_id for r in (await session.execute(select(ProviderRefund).where(
            ProviderRefund.provider == PROVIDER, ProviderRefund.refund_id.in_(keys)))).scalars().all()
                    } if keys else set()
        for row in rows:
            if row.refund_status in ("", "SUCCESS") and row.out_refund_no not in recorded:
                found.append(Difference("refund_missing_here", row.out_refund_no or row.transaction_id,
                                        f"WeChat Pay's bill refunds {row.amount_fen} fen of {row.out_trade_no}; "
                                        "not recorded here"))
        listed = set(keys)
        ours = (await session.execute(select(ProviderRefund).where(
            ProviderRefund.provider == PROVIDER, ProviderRefund.refunded_at >= since,
            ProviderRefund.refunded_at < until))).scalars().all()
        for refund in ours:
            if refund.status == "held":
                found.append(Difference("refund_held", refund.refund_id,
                                        f"refund of {refund.payment_id} held: its payment never arrived here"))
            elif refund.refund_id not in listed:
                found.append(Difference("refund_missing_at_provider", refund.refund_id,
                                        f"recorded here for {refund.payment_id}; not in WeChat Pay's bill"))
        return found


register_reconciler(WechatpayReconciler())
