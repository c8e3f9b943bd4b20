"""The TikTok Shop connector: a thin httpx client (no official Python SDK exists)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.base import Page, Row, Source
from connectors.clock import Clock
from connectors.errors import AuthRevoked, BadResponse
from connectors.ratelimit import Buckets
from connectors.tiktok.auth import sign
from connectors.tiktok.errors import check
from connectors.tiktok.mapping import to_order_row, to_refund_row
from connectors.tokens import Grant
from connectors.transport import call
from kpi_engine.organisation import ShopConfig

ORDERS_PATH = "/order/202309/orders/search"
RETURNS_PATH = "/return_refund/202309/returns/search"
SHOPS_PATH = "/authorization/202309/shops"
SOURCES = {
    # TikTok warns that update times can land outside the searched range while its data
    # refreshes: re-read ten minutes before the mark, and end a minute before now.
    "orders": Source("orders", "orders", None, 600, 60),
    "refunds": Source("refunds", "refunds", None, 600, 60),
}
PAGE_SIZES = {"orders": 100, "refunds": 50}


class TikTokConnector:
    """Authorization, token refresh and paged order/return search for TikTok Shop."""

    platform = "tiktok"
    sources = SOURCES

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        clock: Clock,
        *,
        service_id: str = "",
        api_url: str = "https://open-api.tiktokglobalshop.com",
        auth_url: str = "https://auth.tiktok-shops.com",
        authorize_url: str = "https://services.tiktokshop.com/open/authorize",
        qps: float = 50.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.service_id = service_id
        self.clock = clock
        self.authorize_base = authorize_url
        self.http = httpx.Client(base_url=api_url, timeout=30, transport=transport)
        self.auth_http = httpx.Client(base_url=auth_url, timeout=30, transport=transport)
        # 50 QPS per API per (app, shop): a bucket per operation and shop.
        self.buckets = Buckets(clock, qps, qps)

    # -- authorization ----------------------------------------------------------------------

    def authorize_url(self, shop: ShopConfig, state: str, redirect_uri: str) -> str:
        """The service's authorization page (the redirect URL is set in Partner Center)."""
        return f"{self.authorize_base}?{urlencode({'service_id': self.service_id, 'state': state})}"

    def exchange(
        self, shop: ShopConfig, code: str, params: Mapping[str, str], redirect_uri: str, now: int
    ) -> Grant:
        """auth_code → tokens, then the shop's cipher from Get Authorized Shops."""
        grant = self._token(
            "/api/v2/token/get", {"auth_code": code, "grant_type": "authorized_code"}
        )
        shops = self._signed("GET", SHOPS_PATH, grant, {}, None, operation="shops").get("shops")
        if not shops:
            raise AuthRevoked("TikTok: the authorization covers no shop", code="no_shop")
        wanted = params.get("shop_id") or ""
        chosen = next(
            (s for s in shops if str(s.get("id")) == wanted),
            next((s for s in shops if s.get("region") == shop.region), shops[0]),
        )
        detail = {
            **grant.detail,
            "shop_cipher": str(chosen["cipher"]),
            "platform_shop_id": str(chosen["id"]),
            "platform_shop_name": str(chosen.get("name", "")),
        }
        return Grant(
            grant.access_token,
            grant.access_expires,
            grant.refresh_token,
            grant.refresh_expires,
            detail,
        )

    def refresh(self, grant: Grant, now: int) -> Grant:
        """A new token pair (TikTok returns a refresh token too: it is stored every time)."""
        fresh = self._token(
            "/api/v2/token/refresh",
            {"refresh_token": grant.refresh_token, "grant_type": "refresh_token"},
        )
        return Grant(
            fresh.access_token,
            fresh.access_expires,
            fresh.refresh_token,
            fresh.refresh_expires,
            {**grant.detail, **fresh.detail},
        )

    def _token(self, path: str, params: dict[str, str]) -> Grant:
        query = {"app_key": self.app_key, "app_secret": self.app_secret, **params}
        bucket = self.buckets.of("", "token")
        data = call(bucket, self.clock, lambda: check(self.auth_http.get(path, params=query)))
        try:
            return Grant(
                access_token=str(data["access_token"]),
                access_expires=int(data["access_token_expire_in"]),
                refresh_token=str(data["refresh_token"]),
                refresh_expires=int(data["refresh_token_expire_in"]),
                detail={
                    "open_id": str(data.get("open_id", "")),
                    "seller_name": str(data.get("seller_name", "")),
                },
            )
        except (KeyError, ValueError) as exc:
            raise BadResponse(f"TikTok token answer without {exc}") from None

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
        """A page of orders (or returns) updated in [start, end), oldest update first."""
        path = ORDERS_PATH if source == "orders" else RETURNS_PATH
        query = {
            "shop_cipher": grant.detail.get("shop_cipher", ""),
            "page_size": str(PAGE_SIZES[source]),
            "sort_field": "update_time",
            "sort_order": "ASC",
        }
        if cursor:
            query["page_token"] = cursor
        body = {"update_time_ge": start, "update_time_lt": end}
        data = self._signed("POST", path, grant, query, body, operation=source, shop=shop.id)
        rows: list[tuple[Row, str]] = []
        if source == "orders":
            rows = [to_order_row(shop.id, order) for order in data.get("orders") or []]
        else:
            for item in data.get("return_orders") or []:
                mapped = to_refund_row(shop.id, item)
                if mapped is not None:
                    rows.append(mapped)
        token = data.get("next_page_token") or None
        return Page(rows, str(token) if token else None)

    def _signed(
        self,
        method: str,
        path: str,
        grant: Grant,
        query: dict[str, str],
        body: dict[str, Any] | None,
        *,
        operation: str,
        shop: str = "",
    ) -> dict[str, Any]:
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""

        def attempt() -> dict[str, Any]:
            params = {**query, "app_key": self.app_key, "timestamp": str(int(self.clock.now()))}
            params["sign"] = sign(self.app_secret, path, params, content)
            headers = {"x-tts-access-token": grant.access_token}
            if body is not None:
                headers["content-type"] = "application/json"
            response = self.http.request(
                method, path, params=params, content=content or None, headers=headers
            )
            return check(response)

        return call(self.buckets.of(shop, operation), self.clock, attempt)
