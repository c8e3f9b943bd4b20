"""A fake Shopee Open Platform v2: auth_partner, token get/refresh (single-use refresh tokens),
get_order_list (≤ 15 days, cursor), get_order_detail (≤ 50), get_return_list, in the documented
shape ({error, message, request_id, response}); every sign recomputed from the doc."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.fakeshop import Answer, FakeShopServer, Request

PARTNER_ID = "2001887"
PARTNER_KEY = "1391fd986fe8ec7569bebed75b0c33ee35eb5a305bed7038657a5cd5f75b1c88"
SHOP_ID = "601234567"
ACCESS_LIFE = 4 * 3600


def _error(error: str, message: str, status: int = 200) -> Answer:
    return Answer(status, {"error": error, "message": message, "request_id": "e1"})


def _ok(response: Any = None, **top: Any) -> Answer:
    body = {"error": "", "message": "", "request_id": "r1", **top}
    if response is not None:
        body["response"] = response
    return Answer(200, body)


class FakeShopee(FakeShopServer):
    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        super().__init__(*(() if clock is None else (clock,)))
        self.orders: dict[str, dict[str, Any]] = {}
        self.returns: dict[str, dict[str, Any]] = {}
        self.codes = {"shopee-code-1"}
        self.access: dict[str, int] = {}
        self.refresh_tokens: dict[str, int] = {}  # unused refresh token → expiry
        self.spent: set[str] = set()
        self.bad_signatures = 0
        self.observer: Callable[[Request], None] | None = None
        self._serial = itertools.count(1)

    def add_order(
        self,
        sn: str,
        *,
        created: int,
        updated: int | None = None,
        status: str = "READY_TO_SHIP",
        price: str = "19.90",
        qty: int = 2,
        total: str = "42.80",
    ) -> None:
        order: dict[str, Any] = {
            "order_sn": sn,
            "region": "SG",
            "currency": "SGD",
            "cod": False,
            "order_status": status,
            "create_time": created,
            "update_time": updated or created,
            "total_amount": float(total),
            "item_list": [
                {
                    "item_id": 100,
                    "model_id": 200,
                    "item_sku": "GLOW-1",
                    "model_quantity_purchased": qty,
                    "model_original_price": float(price) + 2,
                    "model_discounted_price": float(price),
                }
            ],
        }
        if status != "UNPAID":
            order["pay_time"] = created + 60
        self.orders[sn] = order

    def add_return(
        self,
        return_sn: str,
        order_sn: str,
        *,
        created: int,
        status: str = "ACCEPTED",
        amount: str = "39.80",
    ) -> None:
        self.returns[return_sn] = {
            "return_sn": return_sn,
            "order_sn": order_sn,
            "refund_amount": float(amount),
            "currency": "SGD",
            "status": status,
            "create_time": created,
            "update_time": created,
            "reason": "NOT_RECEIPT",
            "item": [],
        }

    # -- signatures ---------------------------------------------------------------------------

    def _signed(self, request: Request, shop: bool) -> Answer | None:
        q = request.query
        if q.get("partner_id") != PARTNER_ID:
            return _error("error_param", "partner_id is invalid")
        base = PARTNER_ID + request.path + q.get("timestamp", "")
        if shop:
            base += q.get("access_token", "") + q.get("shop_id", "")
        expected = hmac.new(PARTNER_KEY.encode(), base.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(q.get("sign", ""), expected):
            self.bad_signatures += 1
            return _error("error_sign", "Wrong sign.")
        if abs(self.now() - int(q.get("timestamp") or 0)) > 300:
            return _error("error_param", "Invalid timestamp.")
        return None

    def _pair(self) -> dict[str, Any]:
        n = next(self._serial)
        access, refresh = f"sp_access_{n}", f"sp_refresh_{n}"
        self.access[access] = self.now() + ACCESS_LIFE
        self.refresh_tokens[refresh] = self.now() + 30 * 86400
        return {"access_token": access, "refresh_token": refresh, "expire_in": ACCESS_LIFE}

    # -- the API ------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        path = request.path
        if path in ("/api/v2/auth/token/get", "/api/v2/auth/access_token/get"):
            problem = self._signed(request, shop=False)
            if problem is not None:
                return problem
            body = request.json()
            if str(body.get("shop_id")) != SHOP_ID or str(body.get("partner_id")) != PARTNER_ID:
                return _error("error_param", "shop_id or partner_id invalid")
            if path == "/api/v2/auth/token/get":
                if body.get("code") not in self.codes:
                    return _error("error_auth", "Invalid code")
                self.codes.discard(body["code"])
                return _ok(None, **self._pair(), shop_id_list=[int(SHOP_ID)], merchant_id_list=[])
            token = body.get("refresh_token", "")
            if token in self.spent or self.refresh_tokens.get(token, 0) <= self.now():
                return _error("error_auth", "Invalid refresh_token.")
            del self.refresh_tokens[token]
            self.spent.add(token)  # single use
            return _ok(None, **self._pair(), partner_id=int(PARTNER_ID), shop_id=int(SHOP_ID))
        problem = self._signed(request, shop=True)
        if problem is not None:
            return problem
        q = request.query
        if q.get("shop_id") != SHOP_ID:
            return _error("error_param", "shop_id invalid")
        if self.access.get(q.get("access_token", ""), 0) <= self.now():
            return _error("error_auth", "Invalid access_token.")
        if self.observer is not None:
            self.observer(request)
        if path == "/api/v2/order/get_order_list":
            return self._list(q)
        if path == "/api/v2/order/get_order_detail":
            numbers = q.get("order_sn_list", "").split(",")
            if not 1 <= len(numbers) <= 50:
                return _error("error_param", "order_sn_list should be 1-50")
            fields = set(q.get("response_optional_fields", "").split(","))
            found = []
            for sn in numbers:
                order = dict(self.orders[sn])
                for optional in ("total_amount", "pay_time", "item_list"):
                    if optional not in fields:
                        order.pop(optional, None)
                found.append(order)
            return _ok({"order_list": found})
        if path == "/api/v2/returns/get_return_list":
            start, end = int(q["update_time_from"]), int(q["update_time_to"])
            if end - start > 15 * 86400:
                return _error("error_param", "time range must be within 15 days")
            size, page = int(q["page_size"]), int(q["page_no"])
            chosen = sorted(
                (r for r in self.returns.values() if start <= r["update_time"] <= end),
                key=lambda r: (r["update_time"], r["return_sn"]),
            )
            part = chosen[page * size : (page + 1) * size]
            return _ok({"return": part, "more": len(chosen) > (page + 1) * size})
        return _error("error_not_found", "api not found", 404)

    def _list(self, q: dict[str, str]) -> Answer:
        if q.get("time_range_field") != "update_time":
            return _error("error_param", "time_range_field")
        start, end = int(q["time_from"]), int(q["time_to"])
        if end - start > 15 * 86400:
            return _error(
                "order.order_list_invalid_time", "The time range should be within 15 days."
            )
        size = int(q["page_size"])
        if not 1 <= size <= 100:
            return _error("error_param", "page_size should be 1-100")
        chosen = sorted(
            (o for o in self.orders.values() if start <= o["update_time"] <= end),
            key=lambda o: (o["update_time"], o["order_sn"]),
        )
        if q.get("cursor"):
            last_time, last_sn = q["cursor"].split(":", 1)
            chosen = [
                o for o in chosen if (o["update_time"], o["order_sn"]) > (int(last_time), last_sn)
            ]
        page, rest = chosen[:size], chosen[size:]
        cursor = f"{page[-1]['update_time']}:{page[-1]['order_sn']}" if rest else ""
        return _ok(
            {
                "order_list": [{"order_sn": o["order_sn"]} for o in page],
                "more": bool(rest),
                "next_cursor": cursor,
            }
        )


def exact(value: str) -> Decimal:
    return Decimal(value)
