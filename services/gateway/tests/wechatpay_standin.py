"""A loopback stand-in for WeChat Pay's API v3 (orders, close-order, trade bills), for the gateway's tests.

It checks what WeChat Pay checks: the WECHATPAY2-SHA256-RSA2048 Authorization of every request against the
merchant's public key (mchid, serial_no, a fresh timestamp, the signature over METHOD\\nURL\\nTIMESTAMP\\n
NONCE\\nBODY\\n), the order fields and their limits (out_trade_no 6–32 of [0-9A-Za-z_-|*], attach ≤ 128,
description 1–127, amount.total > 0 in fen, time_expire RFC 3339, notify_url https, openid for JSAPI,
scene_info.payer_client_ip for H5), and answers as WeChat Pay does, each answer signed with the platform
certificate's key or, in public-key mode, the WeChat Pay public key (serial PUB_KEY_ID_…).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
AUTH = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Standin:
    mchid: str
    merchant_serial: str
    merchant_public: rsa.RSAPublicKey
    signing_key: rsa.RSAPrivateKey  # the platform's (or the WeChat Pay public key's private half)
    signing_serial: str
    url: str = ""
    requests: list[dict] = field(default_factory=list)
    orders: dict[str, dict] = field(default_factory=dict)  # out_trade_no → {"body", "prepay_id", "closed"}
    bills: dict[str, str] = field(default_factory=dict)  # bill_date → CSV text (see trade_bill)
    sign_answers: bool = True

    def calls(self, path_part: str) -> list[dict]:
        return [r for r in self.requests if path_part in r["path"]]

    # -- answers --------------------------------------------------------------------------------

    def _answer(self, status: int, body: dict | None = None, *, raw: bytes | None = None,
                media: str = "application/json"):
        from starlette.responses import Response

        content = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None
                                               else b"")
        headers = {"Request-ID": secrets.token_hex(8)}
        if self.sign_answers:
            stamp, nonce = str(int(time.time())), secrets.token_hex(16)
            signature = self.signing_key.sign(f"{stamp}\n{nonce}\n".encode() + content + b"\n", padding.PKCS1v15(),
                                              hashes.SHA256())
            headers |= {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": self.signing_serial,
                        "Wechatpay-Signature": base64.b64encode(signature).decode()}
        return Response(content, status_code=status, headers=headers, media_type=media if content else None)

    def _error(self, status: int, code: str, message: str):
        return self._answer(status, {"code": code, "message": message})

    def _authorized(self, method: str, url: str, headers, body: bytes) -> str | None:
        """None when the merchant signed this request, else why not."""
        scheme, _, params = (headers.get("authorization") or "").partition(" ")
        if scheme != "WECHATPAY2-SHA256-RSA2048":
            return "schema"
        fields = dict(AUTH.findall(params))
        if fields.get("mchid") != self.mchid or fields.get("serial_no") != self.merchant_serial:
            return "mchid or serial_no"
        if abs(time.time() - int(fields.get("timestamp") or 0)) > 300:
            return "timestamp"
        message = f"{method}\n{url}\n{fields['timestamp']}\n{fields.get('nonce_str', '')}\n".encode() + body + b"\n"
        try:
            self.merchant_public.verify(base64.b64decode(fields.get("signature", "")), message, padding.PKCS1v15(),
                                        hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature"
        return None

    # -- routes ---------------------------------------------------------------------------------

    async def handle(self, request):
        body = await request.body()
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        self.requests.append({"method": request.method, "path": request.url.path, "url": url,
                              "headers": dict(request.headers), "body": body})
        if request.url.path.startswith("/download/"):
            date = request.url.path.rsplit("/", 1)[-1]
            why = self._authorized("GET", url, request.headers, b"")
            if why:
                return self._error(401, "SIGN_ERROR", why)
            return self._answer(200, raw=self.bills.get(date, "").encode("utf-8"), media="text/plain")
        why = self._authorized(request.method, url, request.headers, body if request.method == "POST" else b"")
        if why:
            return self._error(401, "SIGN_ERROR", f"签名错误 ({why})")
        path = request.url.path
        if path.startswith("/v3/pay/transactions/out-trade-no/") and path.endswith("/close"):
            order = self.orders.get(path.split("/")[-2])
            if order is None:
                return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
            order["closed"] = True
            return self._answer(204)
        if path in ("/v3/pay/transactions/jsapi", "/v3/pay/transactions/native", "/v3/pay/transactions/h5"):
            return self._order(path.rsplit("/", 1)[-1], body)
        if path == "/v3/bill/tradebill":
            date = request.query_params.get("bill_date", "")
            if date not in self.bills:
                return self._error(400, "NO_STATEMENT_EXIST", "账单文件不存在")
            digest = hashlib.sha1(self.bills[date].encode("utf-8")).hexdigest()  # noqa: S324 - WeChat Pay's
            return self._answer(200, {"hash_type": "SHA1", "hash_value": digest,
                                      "download_url": f"{self.url}/download/{date}"})
        return self._error(404, "NOT_FOUND", "not found")

    def _order(self, kind: str, raw: bytes):
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(400, "PARAM_ERROR", "body is not JSON")
        problems = []
        if body.get("mchid") != self.mchid:
            problems.append("mchid")
        if not body.get("appid"):
            problems.append("appid")
        if not OUT_TRADE_NO.fullmatch(str(body.get("out_trade_no") or "")):
            problems.append("out_trade_no")
        if "attach" in body and not 1 <= len(str(body["attach"])) <= 128:
            problems.append("attach")
        if not 1 <= len(str(body.get("description") or "").encode()) <= 127:
            problems.append("description")
        amount = body.get("amount") or {}
        if not isinstance(amount.get("total"), int) or amount["total"] <= 0 or amount.get("currency", "CNY") != "CNY":
            problems.append("amount")
        if not str(body.get("notify_url") or "").startswith("https://"):
            problems.append("notify_url")
        try:
            expire = datetime.fromisoformat(str(body.get("time_expire")))
            if expire.tzinfo is None:
                problems.append("time_expire")
        except ValueError:
            problems.append("time_expire")
        if kind == "jsapi" and not (body.get("payer") or {}).get("openid"):
            problems.append("payer.openid")
        if kind == "h5" and not ((body.get("scene_info") or {}).get("payer_client_ip")
                                 and ((body.get("scene_info") or {}).get("h5_info") or {}).get("type")):
            problems.append("scene_info")
        if problems:
            return self._error(400, "PARAM_ERROR", f"参数错误: {', '.join(problems)}")
        known = self.orders.get(body["out_trade_no"])
        if known is not None and known["body"] != body:
            return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
        if known is None:
            known = self.orders[body["out_trade_no"]] = {
                "body": body, "kind": kind, "closed": False, "prepay_id": "wx" + secrets.token_hex(15)}
        if kind == "jsapi":
            return self._answer(200, {"prepay_id": known["prepay_id"]})
        if kind == "native":
            return self._answer(200, {"code_url": f"weixin://wxpay/bizpayurl?pr={known['prepay_id'][-8:]}"})
        return self._answer(200, {"h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id="
                                            f"{known['prepay_id']}&package=1"})


@asynccontextmanager
async def serving(standin: Standin) -> AsyncIterator[Standin]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/{path:path}", standin.handle, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    standin.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield standin
    finally:
        server.should_exit = True
        await task


BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
               "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
               "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")


def trade_bill(rows: list[dict]) -> str:
    """A trade bill (ALL) as WeChat Pay writes it: every field of a row starts with a backquote, amounts in
    yuan; `rows` give transaction_id, out_trade_no, yuan and, for refunds, out_refund_no + refund_yuan."""
    lines = [BILL_HEADER]
    for r in rows:
        refund = "out_refund_no" in r
        fields = ["2026-12-06 12:00:00", "wx8888888888888888", "1900000001", "0", "", r["transaction_id"],
                  r["out_trade_no"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", "REFUND" if refund else "SUCCESS",
                  "OTHERS", "CNY", "0.00" if refund else r["yuan"], "0.00", "50300" if refund else "0",
                  r.get("out_refund_no", "0"), r.get("refund_yuan", "0.00"), "0.00",
                  "ORIGINAL" if refund else "", "SUCCESS" if refund else "", "年度会员", r["out_trade_no"], "0.00",
                  "0.60%", r["yuan"], r.get("refund_yuan", "0.00"), ""]
        lines.append(",".join("`" + f for f in fields))
    lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
    lines.append(f"`{len(rows)},`0.00,`0.00,`0.00,`0.00,`0.00,`0.00")
    return "\n".join(lines) + "\n"
