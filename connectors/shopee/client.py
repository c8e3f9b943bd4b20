"""The Shopee connector: a thin httpx client with a configurable host."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.base import Page, Row, Source
from connectors.clock import Clock
from connectors.errors import BadResponse
from connectors.ratelimit import Buckets
from connectors.shopee.auth import base_string, sign
from connectors.shopee.errors import check
from connectors.shopee.mapping import to_order_row, to_refund_row
from connectors.tokens import Grant
from connectors.transport import call
from kpi_engine.organisation import ShopConfig

FIFTEEN_DAYS = 15 * 86400
REFRESH_LIFE = 30 * 86400  # a refresh token lasts 30 days, and is good for one use
SOURCES = {
    # Shopee allows at most 15 days per query: longer spans are read in 15-day windows.
    "orders": Source("orders", "orders", FIFTEEN_DAYS, 600, 60),
    "refunds": Source("refunds", "refunds", FIFTEEN_DAYS, 600, 60),
}
DETAIL_FIELDS = "total_amount,pay_time,item_list,cod"
DETAIL_BATCH = 50


class ShopeeConnector:
    """Authorization, single-use refresh tokens and windowed order/return reads for Shopee."""

    platform = "shopee"
    sources = SOURCES

    def __init__(
        self,
        partner_id: str,
        partner_key: str,
        clock: Clock,
        *,
        api_url: str = "https://partner.shopeemobile.com",
        qps: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.partner_id = partner_id
        self.partner_key = partner_key
        self.clock = clock
        self.api_url = api_url.rstrip("/")
        self.http = httpx.Client(base_url=self.api_url, timeout=30, transport=transport)
        self.buckets = Buckets(clock, qps, qps)

    def _public(self, path: str) -> dict[str, str]:
        stamp = int(self.clock.now())
        return {
            "partner_id": self.partner_id,
            "timestamp": str(stamp),
            "sign": sign(self.partner_key, base_string(self.partner_id, path, stamp)),
        }

    # -- authorization ----------------------------------------------------------------------

    def authorize_url(self, shop: ShopConfig, state: str, redirect_uri: str) -> str:
        """The auth_partner link (valid 5 minutes); `state` rides on the redirect URL."""
        path = "/api/v2/shop/auth_partner"
        redirect = f"{redirect_uri}?{urlencode({'state': state})}"
        return f"{self.api_url}{path}?{urlencode({**self._public(path), 'redirect': redirect})}"

    def exchange(
        self, shop: ShopConfig, code: str, params: Mapping[str, str], redirect_uri: str, now: int
    ) -> Grant:
        """code + shop_id → the shop's token pair."""
        shop_id = params.get("shop_id", "")
        if not shop_id.isdigit():
            raise BadResponse("Shopee: the callback carries no shop_id")
        body = {"code": code, "shop_id": int(shop_id), "partner_id": int(self.partner_id)}
        answer = self._token("/api/v2/auth/token/get", body)
        return self._grant(answer, now, {"platform_shop_id": shop_id})

    def refresh(self, grant: Grant, now: int) -> Grant:
        """A new pair; the old refresh token is spent by this call, so the caller stores the
        new one before using anything."""
        shop_id = grant.detail["platform_shop_id"]
        body = {
            "refresh_token": grant.refresh_token,
            "shop_id": int(shop_id),
            "partner_id": int(self.partner_id),
        }
        answer = self._token("/api/v2/auth/access_token/get", body)
        return self._grant(answer, now, grant.detail)

    def _token(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        content = json.dumps(body).encode()

        def attempt() -> dict[str, Any]:
            response = self.http.post(
                path,
                params=self._public(path),
                content=content,
                headers={"content-type": "application/json"},
            )
            return check(response, token_call=True)

        return call(self.buckets.of("", "token"), self.clock, attempt)

    @staticmethod
    def _grant(answer: dict[str, Any], now: int, detail: dict[str, str]) -> Grant:
        try:
            return Grant(
                access_token=str(answer["access_token"]),
                access_expires=now + int(answer["expire_in"]),
                refresh_token=str(answer["refresh_token"]),
                refresh_expires=now + REFRESH_LIFE,
                detail=dict(detail),
            )
        except (KeyError, ValueError) as exc:
            raise BadResponse(f"Shopee token answer without {exc}") from None

    # -- data -------------------------------------------------------------------------------

    def fetch(
        self,
        shop: ShopConfig,
        grant: Grant,
        source: str,
        start: int,
        end: int,
        cursor: str | None,
    ) -> Page:
        """A page of orders (list, then details in batches of 50) or of returns."""
        if source == "refunds":
            return self._returns(shop, grant, start, end, cursor)
        answer = self._get(
            shop,
            grant,
            "/api/v2/order/get_order_list",
            {
                "time_range_field": "update_time",
                "time_from": str(start),
                "time_to": str(end - 1),  # Shopee's range is inclusive
                "page_size": "100",
                "cursor": cursor or "",
            },
        )
        response = answer.get("response") or {}
        numbers = [str(o["order_sn"]) for o in response.get("order_list") or []]
        rows: list[tuple[Row, str]] = []
        for first in range(0, len(numbers), DETAIL_BATCH):
            detail = self._get(
                shop,
                grant,
                "/api/v2/order/get_order_detail",
                {
                    "order_sn_list": ",".join(numbers[first : first + DETAIL_BATCH]),
                    "response_optional_fields": DETAIL_FIELDS,
                },
            )
            for order in (detail.get("response") or {}).get("order_list") or []:
                rows.append(to_order_row(shop.id, order))
        more = bool(response.get("more"))
        return Page(rows, str(response.get("next_cursor") or "") if more else None)

    def _returns(
        self, shop: ShopConfig, grant: Grant, start: int, end: int, cursor: str | None
    ) -> Page:
        page_no = int(cursor or 0)
        answer = self._get(
            shop,
            grant,
            "/api/v2/returns/get_return_list",
            {
                "page_no": str(page_no),
                "page_size": "100",
                "update_time_from": str(start),
                "update_time_to": str(end - 1),
            },
        )
        response = answer.get("response") or {}
        rows = [to_refund_row(shop.id, item) for item in response.get("return") or []]
        return Page(rows, str(page_no + 1) if response.get("more") else None)

    def _get(
        self, shop: ShopConfig, grant: Grant, path: str, params: dict[str, str]
    ) -> dict[str, Any]:
        shop_id = grant.detail["platform_shop_id"]

        def attempt() -> dict[str, Any]:
            stamp = int(self.clock.now())
            base = base_string(self.partner_id, path, stamp, grant.access_token, shop_id)
            query = {
                "partner_id": self.partner_id,
                "timestamp": str(stamp),
                "access_token": grant.access_token,
                "shop_id": shop_id,
                "sign": sign(self.partner_key, base),
                **params,
            }
            return check(self.http.get(path, params=query))

        operation = path.rsplit("/", 1)[-1]
        return call(self.buckets.of(shop.id, operation), self.clock, attempt)
