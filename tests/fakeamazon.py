"""A fake Amazon: the LWA token endpoint and the SP-API operations the connector calls
(searchOrders 2026-01-01, listFinancialEvents v0) in the models' wire format, with the usage
plans enforced as token buckets (429 QuotaExceeded beyond them) and x-amzn-RateLimit-Limit
sent back, access tokens checked in x-amz-access-token, and windows ending ≥ 2 min ago."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from tests.fakeshop import Answer, FakeShopServer, Request

CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdef"
CLIENT_SECRET = "amzn1.oa2-cs.v1.fakesecret"
JP = "A1VC38T7YXB528"
PLANS = {"/orders/2026-01-01/orders": (0.0056, 20), "/finances/v0/financialEvents": (0.5, 30)}


def iso(instant: int) -> str:
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _errors(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(
        status, {"errors": [{"code": code, "message": message, "details": ""}]}, headers or {}
    )


class FakeAmazon(FakeShopServer):
    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        super().__init__(*(() if clock is None else (clock,)))
        self.orders: dict[str, dict[str, Any]] = {}
        self.refund_events: list[dict[str, Any]] = []
        self.codes = {"ANspapiCode1"}
        self.refresh_tokens = {"Atzr|IwEBIfake-refresh"}
        self.access: dict[str, int] = {}
        self.throttled = 0
        self._tokens: dict[str, float] = {}
        self._stamps: dict[str, float] = {}
        self._serial = itertools.count(1)

    def add_order(
        self,
        order_id: str,
        *,
        created: int,
        updated: int | None = None,
        status: str = "UNSHIPPED",
        price: str = "1980",
        qty: int = 2,
    ) -> None:
        total = str(int(price) * qty + 500)
        self.orders[order_id] = {
            "orderId": order_id,
            "createdTime": iso(created),
            "lastUpdatedTime": iso(updated or created),
            "salesChannel": {
                "channelName": "AMAZON",
                "marketplaceId": JP,
                "marketplaceName": "Amazon.co.jp",
            },
            "proceeds": {"grandTotal": {"amount": total, "currencyCode": "JPY"}},
            "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "AMAZON"},
            "orderItems": [
                {
                    "orderItemId": f"{order_id}-1",
                    "quantityOrdered": qty,
                    "product": {
                        "asin": "B08C1W5N87",
                        "sellerSku": "GLOW-JP-1",
                        "price": {"unitPrice": {"amount": price, "currencyCode": "JPY"}},
                    },
                    "proceeds": {
                        "proceedsTotal": {"amount": str(int(price) * qty), "currencyCode": "JPY"},
                        "breakdowns": [
                            {
                                "type": "ITEM",
                                "subtotal": {
                                    "amount": str(int(price) * qty),
                                    "currencyCode": "JPY",
                                },
                            }
                        ],
                    },
                }
            ],
        }

    def add_refund(
        self, order_id: str, *, posted: int, principal: float = -1980.0, tax: float = -198.0
    ) -> None:
        self.refund_events.append(
            {
                "AmazonOrderId": order_id,
                "PostedDate": iso(posted),
                "MarketplaceName": "Amazon.co.jp",
                "ShipmentItemAdjustmentList": [
                    {
                        "OrderAdjustmentItemId": "52986411826454",
                        "QuantityShipped": 1,
                        "SellerSKU": "GLOW-JP-1",
                        "ItemChargeAdjustmentList": [
                            {
                                "ChargeType": "Principal",
                                "ChargeAmount": {
                                    "CurrencyCode": "JPY",
                                    "CurrencyAmount": principal,
                                },
                            },
                            {
                                "ChargeType": "Tax",
                                "ChargeAmount": {"CurrencyCode": "JPY", "CurrencyAmount": tax},
                            },
                        ],
                    }
                ],
            }
        )

    # -- usage plans --------------------------------------------------------------------------

    def _admit(self, path: str) -> bool:
        rate, burst = PLANS[path]
        now = self.clock()
        tokens = min(
            burst, self._tokens.get(path, burst) + (now - self._stamps.get(path, now)) * rate
        )
        self._stamps[path] = now
        if tokens < 1 - 1e-9:
            self._tokens[path] = tokens
            return False
        self._tokens[path] = tokens - 1
        return True

    # -- the API ------------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        if request.path == "/auth/o2/token":
            return self._lwa(request)
        token = request.headers.get("x-amz-access-token", "")
        expires = self.access.get(token)
        if expires is None:
            return _errors(403, "Unauthorized", "Access to requested resource is denied.")
        if expires <= self.now():
            return _errors(403, "Unauthorized", "The access token you provided has expired.")
        rate = str(PLANS.get(request.path, (1, 1))[0])
        if request.path in PLANS and not self._admit(request.path):
            self.throttled += 1
            return _errors(
                429,
                "QuotaExceeded",
                "You exceeded your quota for the requested resource.",
                {"x-amzn-RateLimit-Limit": rate},
            )
        headers = {"x-amzn-RateLimit-Limit": rate, "x-amzn-RequestId": f"req-{next(self._serial)}"}
        if request.path == "/orders/2026-01-01/orders":
            answer = self._search(request.query)
        elif request.path == "/finances/v0/financialEvents":
            answer = self._events(request.query)
        else:
            return _errors(404, "NotFound", "no such operation")
        answer.headers.update(headers)
        return answer

    def _lwa(self, request: Request) -> Answer:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Answer(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        grant = form.get("grant_type")
        if grant == "authorization_code" and form.get("code") in self.codes:
            self.codes.discard(form["code"])
            refresh = "Atzr|IwEBIfake-refresh"
        elif grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
            refresh = form["refresh_token"]
        else:
            return Answer(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : refresh_token",
                },
            )
        access = f"Atza|IwEBIaccess-{next(self._serial)}"
        self.access[access] = self.now() + 3600
        return Answer(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": 3600,
            },
        )

    def _search(self, q: dict[str, str]) -> Answer:
        if q.get("marketplaceIds") != JP:
            return _errors(400, "InvalidInput", "Invalid marketplaceIds")
        if "paginationToken" in q:
            after, before, last = json.loads(base64.b64decode(q["paginationToken"])[:-2])
        else:
            after, before, last = q["lastUpdatedAfter"], q["lastUpdatedBefore"], None
            if epoch(before) > self.now() - 120:
                return _errors(
                    400, "InvalidInput", "lastUpdatedBefore must be at least 2 minutes in the past"
                )
        chosen = sorted(
            (
                o
                for o in self.orders.values()
                if epoch(after) <= epoch(o["lastUpdatedTime"]) <= epoch(before)
            ),
            key=lambda o: (o["lastUpdatedTime"], o["orderId"]),
        )
        if last is not None:
            chosen = [o for o in chosen if (o["lastUpdatedTime"], o["orderId"]) > tuple(last)]
        size = int(q.get("maxResultsPerPage", "100"))
        page, rest = chosen[:size], chosen[size:]
        body: dict[str, Any] = {"orders": page, "lastUpdatedBefore": before}
        if rest:
            # Standard base64, with the + / = that trip double encoding.
            token = (
                json.dumps([after, before, [page[-1]["lastUpdatedTime"], page[-1]["orderId"]]])
                + "?>"
            )
            body["pagination"] = {"nextToken": base64.b64encode(token.encode()).decode()}
        return Answer(200, body)

    def _events(self, q: dict[str, str]) -> Answer:
        if "NextToken" in q:
            after, before, offset = json.loads(base64.b64decode(q["NextToken"]))
        else:
            after, before, offset = q["PostedAfter"], q["PostedBefore"], 0
        chosen = [
            e for e in self.refund_events if epoch(after) <= epoch(e["PostedDate"]) <= epoch(before)
        ]
        size = int(q.get("MaxResultsPerPage", "100"))
        page = chosen[offset : offset + size]
        payload: dict[str, Any] = {
            "FinancialEvents": {"RefundEventList": page, "ShipmentEventList": []}
        }
        if offset + size < len(chosen):
            payload["NextToken"] = base64.b64encode(
                json.dumps([after, before, offset + size]).encode()
            ).decode()
        return Answer(200, {"payload": payload})
