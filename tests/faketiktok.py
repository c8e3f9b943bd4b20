"""A fake TikTok Shop Open API: token endpoints, Get Authorized Shops, Search Orders and Search
Returns in the documented wire format (code/message/data/request_id), every request's `sign`
recomputed from the documented algorithm, its timestamp window and its access token checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from typing import Any

from tests.fakeshop import Answer, FakeShopServer, Request

APP_KEY = "29a39d"
APP_SECRET = "e59af819cc"
SHOP_ID = "7494726673780148744"
CIPHER = "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
ACCESS_LIFE = 7 * 86400
REFRESH_LIFE = 365 * 86400


def documented_sign(secret: str, path: str, query: dict[str, str], body: bytes) -> str:
    """The doc's steps: every query parameter but sign and access_token, keys sorted, k+v
    concatenated after the path, the body appended, wrapped in the secret, HMAC-SHA256 hex."""
    pieces = [path]
    for key in sorted(query):
        if key in ("sign", "access_token"):
            continue
        pieces.append(key + query[key])
    text = "".join(pieces) + body.decode()
    return hmac.new(secret.encode(), (secret + text + secret).encode(), hashlib.sha256).hexdigest()


def _ok(data: Any) -> Answer:
    return Answer(
        200, {"code": 0, "message": "Success", "request_id": "2026120112000001", "data": data}
    )


def _error(code: int, message: str, status: int = 200) -> Answer:
    return Answer(
        status, {"code": code, "message": message, "request_id": "2026120112000002", "data": None}
    )


class FakeTikTok(FakeShopServer):
    """Orders and returns are dicts in the Get Order List / Search Returns shape."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        super().__init__(*(() if clock is None else (clock,)))
        self.orders: dict[str, dict[str, Any]] = {}
        self.returns: dict[str, dict[str, Any]] = {}
        self.codes = {"auth-code-1"}
        self.access: dict[str, int] = {}  # valid access token → expiry
        self.refresh_tokens: dict[str, int] = {}
        self.revoked = False
        self.bad_signatures = 0
        self._serial = itertools.count(1)

    # -- data --------------------------------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        *,
        created: int,
        updated: int | None = None,
        status: str = "AWAITING_SHIPMENT",
        sub_total: str = "25.00",
        total: str = "29.99",
        currency: str = "USD",
    ) -> dict[str, Any]:
        order = {
            "id": order_id,
            "status": status,
            "create_time": created,
            "update_time": updated or created,
            "payment": {
                "currency": currency,
                "sub_total": sub_total,
                "total_amount": total,
                "original_total_product_price": sub_total,
                "seller_discount": "0",
                "platform_discount": "0",
                "shipping_fee": "4.99",
                "tax": "0",
            },
            "line_items": [
                {
                    "id": f"{order_id}01",
                    "sku_id": "1729",
                    "sale_price": sub_total,
                    "currency": currency,
                    "display_status": status,
                }
            ],
            "recipient_address": {"region_code": "US"},
        }
        if status not in ("UNPAID",):
            order["paid_time"] = created + 30
        self.orders[order_id] = order
        return order

    def add_return(
        self,
        return_id: str,
        order_id: str,
        *,
        created: int,
        updated: int | None = None,
        status: str = "RETURN_OR_REFUND_REQUEST_COMPLETE",
        amount: str = "25.00",
    ) -> None:
        self.returns[return_id] = {
            "return_id": return_id,
            "order_id": order_id,
            "return_type": "REFUND",
            "return_status": status,
            "create_time": created,
            "update_time": updated or created,
            "refund_amount": {
                "currency": "USD",
                "refund_total": amount,
                "refund_subtotal": amount,
                "refund_shipping_fee": "0",
                "refund_tax": "0",
            },
        }

    # -- the API ------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        path = request.path
        if path == "/api/v2/token/get":
            return self._token_get(request)
        if path == "/api/v2/token/refresh":
            return self._token_refresh(request)
        problem = self._check(request)
        if problem is not None:
            return problem
        if path == "/authorization/202309/shops":
            return _ok(
                {
                    "shops": [
                        {
                            "id": SHOP_ID,
                            "name": "Glow Beauty US",
                            "region": "US",
                            "seller_type": "CROSS_BORDER",
                            "cipher": CIPHER,
                            "code": "USLCXXXX",
                        }
                    ]
                }
            )
        if path == "/order/202309/orders/search":
            return self._search(request, self.orders, "orders", "id", 100)
        if path == "/return_refund/202309/returns/search":
            return self._search(request, self.returns, "return_orders", "return_id", 50)
        return _error(36009003, "path not found", 404)

    def _grant(self) -> dict[str, Any]:
        n = next(self._serial)
        access, refresh = f"TTP_access_{n}", f"TTP_refresh_{n}"
        now = self.now()
        self.access[access] = now + ACCESS_LIFE
        self.refresh_tokens[refresh] = now + REFRESH_LIFE
        return {
            "access_token": access,
            "access_token_expire_in": now + ACCESS_LIFE,
            "refresh_token": refresh,
            "refresh_token_expire_in": now + REFRESH_LIFE,
            "open_id": "7010736057180325637",
            "seller_name": "Glow Beauty",
            "seller_base_region": "US",
            "user_type": 0,
        }

    def _token_get(self, request: Request) -> Answer:
        q = request.query
        if q.get("app_key") != APP_KEY or q.get("app_secret") != APP_SECRET:
            return _error(36009004, "invalid app_key or app_secret")
        if q.get("grant_type") != "authorized_code" or q.get("auth_code") not in self.codes:
            return _error(36004005, "auth code invalid")
        self.codes.discard(q["auth_code"])  # single use
        return _ok(self._grant())

    def _token_refresh(self, request: Request) -> Answer:
        q = request.query
        if q.get("app_key") != APP_KEY or q.get("app_secret") != APP_SECRET:
            return _error(36009004, "invalid app_key or app_secret")
        if self.revoked:
            return _error(36004005, "authorization record not found")
        expires = self.refresh_tokens.get(q.get("refresh_token", ""))
        if q.get("grant_type") != "refresh_token" or expires is None:
            return _error(36004005, "refresh token invalid")
        if expires <= self.now():
            return _error(36004001, "refresh token expired")
        return _ok(self._grant())

    def _check(self, request: Request) -> Answer | None:
        q = request.query
        if q.get("app_key") != APP_KEY:
            return _error(36009004, "invalid app_key")
        expected = documented_sign(APP_SECRET, request.path, q, request.body)
        if not hmac.compare_digest(q.get("sign", ""), expected):
            self.bad_signatures += 1
            return _error(106001, "Invalid sign")
        stamp = int(q.get("timestamp", "0"))
        if not self.now() - 300 <= stamp <= self.now() + 30:
            return _error(36009006, "timestamp out of range")
        token = request.headers.get("x-tts-access-token", "")
        if self.revoked:
            return _error(105001, "access token invalid")
        expires = self.access.get(token)
        if expires is None:
            return _error(105001, "access token invalid")
        if expires <= self.now():
            return _error(105002, "access token expired")
        return None

    def _search(
        self, request: Request, items: dict[str, dict[str, Any]], key: str, ident: str, biggest: int
    ) -> Answer:
        q = request.query
        if q.get("shop_cipher") != CIPHER:
            return _error(36009005, "invalid shop_cipher")
        size = int(q.get("page_size", "0"))
        if not 1 <= size <= biggest:
            return _error(36009001, "page_size out of range")
        body = request.json()
        ge, lt = int(body["update_time_ge"]), int(body["update_time_lt"])
        chosen = sorted(
            (i for i in items.values() if ge <= i["update_time"] < lt),
            key=lambda i: (i["update_time"], i[ident]),
        )
        # Keyset page token: (update_time, id) of the last item sent.
        if q.get("page_token"):
            last = json.loads(base64.urlsafe_b64decode(q["page_token"]))
            chosen = [i for i in chosen if (i["update_time"], i[ident]) > (last[0], last[1])]
        page, rest = chosen[:size], chosen[size:]
        token = (
            base64.urlsafe_b64encode(
                json.dumps([page[-1]["update_time"], page[-1][ident]]).encode()
            ).decode()
            if rest
            else ""
        )
        return _ok({key: page, "next_page_token": token, "total_count": len(chosen)})
