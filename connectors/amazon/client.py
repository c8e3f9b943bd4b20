"""The Amazon connector: python-amazon-sp-api for the SP-API calls, our LWA exchange for tokens.

The SDK is pointed at the configured endpoint (a local fake in tests) and given the stored
access token; its own token cache (wall-clock TTL) is bypassed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sp_api.api import Finances, Orders
from sp_api.auth import AccessTokenResponse
from sp_api.base import Marketplaces
from sp_api.base._transport_httpx import HttpxTransport
from sp_api.base.exceptions import (
    SellingApiException,
    SellingApiForbiddenException,
    SellingApiRequestThrottledException,
)

from connectors.amazon.auth import lwa_token
from connectors.amazon.mapping import to_order_row, to_refund_row
from connectors.base import Page, Row, Source
from connectors.clock import Clock
from connectors.errors import BadResponse, ConnectorError, RateLimited, TokenExpired, Transient
from connectors.ratelimit import Buckets, TokenBucket
from connectors.tokens import Grant
from connectors.transport import call
from kpi_engine.organisation import ShopConfig

SOURCES = {
    # The window must end at least 2 minutes before now: 3 for safety.
    "orders": Source("orders", "orders", None, 600, 180),
    # Finances: "it may take up to 48 hours for orders to appear"; a window over 180 days is empty.
    "refunds": Source("refunds", "refunds", 180 * 86400, 48 * 3600, 180),
}
# Usage plans (rate per second, burst) from the models; x-amzn-RateLimit-Limit overrides.
RATES = {"searchOrders": (0.0056, 20.0), "listFinancialEvents": (0.5, 30.0)}
INCLUDED = ["PROCEEDS", "CANCELLATION", "FULFILLMENT"]


class _StoredToken:
    """Stands in for the SDK's AccessTokenClient: the token comes from our store."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_auth(self) -> AccessTokenResponse:
        return AccessTokenResponse(access_token=self.token, token_type="bearer", expires_in=0)


def iso(instant: int) -> str:
    """Epoch seconds as SP-API's ISO 8601 (UTC)."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AmazonConnector:
    """LWA authorization, and orders (2026-01-01 searchOrders) and refund events by window."""

    platform = "amazon"
    sources = SOURCES

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        clock: Clock,
        *,
        app_id: str = "",
        api_url: str | None = None,
        lwa_url: str = "https://api.amazon.com/auth/o2/token",
        consent_url: str = "https://sellercentral.amazon.co.jp/apps/authorize/consent",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.app_id = app_id
        self.api_url = api_url
        self.lwa_url = lwa_url
        self.consent_url = consent_url
        self.transport = transport
        self.http = httpx.Client(timeout=30, transport=transport)
        self.buckets = Buckets(clock, 1.0, 1.0)
        self._clients: dict[tuple[Any, str], tuple[Any, str]] = {}  # SDK clients per shop

    # -- authorization ----------------------------------------------------------------------

    def authorize_url(self, shop: ShopConfig, state: str, redirect_uri: str) -> str:
        """Seller Central's consent page for the app (the region's Seller Central host)."""
        query = {"application_id": self.app_id, "state": state, "redirect_uri": redirect_uri}
        return f"{self.consent_url}?{urlencode(query)}"

    def exchange(
        self,
        shop: ShopConfig,
        code: str,
        params: Mapping[str, str],
        redirect_uri: str,
        now: int,
    ) -> Grant:
        """spapi_oauth_code → LWA tokens (a private app pastes its refresh token instead)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        body = self._lwa(form)
        detail = {"selling_partner_id": params.get("selling_partner_id", "")}
        return self._grant(body, now, str(body.get("refresh_token", "")), detail)

    def from_refresh_token(self, refresh_token: str, now: int) -> Grant:
        """A private (self-authorised) app's refresh token, checked by a first exchange."""
        return self.refresh(Grant("", 0, refresh_token), now)

    def refresh(self, grant: Grant, now: int) -> Grant:
        """A new 1-hour access token; the refresh token stays the same."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        return self._grant(self._lwa(form), now, grant.refresh_token, grant.detail)

    def _lwa(self, form: dict[str, str]) -> dict[str, Any]:
        bucket = self.buckets.of("", "lwa")
        return call(bucket, self.clock, lambda: lwa_token(self.http, self.lwa_url, form))

    @staticmethod
    def _grant(body: dict[str, Any], now: int, refresh: str, detail: Mapping[str, str]) -> Grant:
        try:
            return Grant(
                access_token=str(body["access_token"]),
                access_expires=now + int(body["expires_in"]),
                refresh_token=str(body.get("refresh_token") or refresh),
                refresh_expires=None,
                detail=dict(detail),
            )
        except (KeyError, ValueError) as exc:
            raise BadResponse(f"LWA answer without {exc}") from None

    # -- data -------------------------------------------------------------------------------

    def _sdk(self, kind: Any, shop: ShopConfig, grant: Grant) -> Any:
        key = (kind, shop.id)
        if key in self._clients:
            client, marketplace_id = self._clients[key]
            client._auth = _StoredToken(grant.access_token)
            return client, marketplace_id
        try:
            marketplace = Marketplaces[grant.detail.get("marketplace") or shop.region]
        except KeyError:
            raise ConnectorError(f"no Amazon marketplace for region {shop.region}") from None
        client = kind(
            marketplace,
            refresh_token=grant.refresh_token,
            credentials={"lwa_app_id": self.client_id, "lwa_client_secret": self.client_secret},
            **({"version": "2026-01-01"} if kind is Orders else {}),
        )
        client._auth = _StoredToken(grant.access_token)
        if self.api_url:
            client.endpoint = self.api_url.rstrip("/")
        client._transport = HttpxTransport(
            client=httpx.Client(timeout=30, transport=self.transport)
        )
        return client, marketplace.marketplace_id

    def fetch(
        self,
        shop: ShopConfig,
        grant: Grant,
        source: str,
        start: int,
        end: int,
        cursor: str | None,
    ) -> Page:
        """A page of orders updated (or refunds posted) in [start, end)."""
        if source == "orders":
            client, marketplace = self._sdk(Orders, shop, grant)
            params: dict[str, Any] = {
                "lastUpdatedAfter": iso(start),
                "lastUpdatedBefore": iso(end - 1),
                "marketplaceIds": [marketplace],
                "maxResultsPerPage": 100,
                "includedData": INCLUDED,
            }
            if cursor:
                params["paginationToken"] = cursor
            response = self._call(shop.id, "searchOrders", lambda: client.search_orders(**params))
            payload = response.payload or {}
            if "orders" not in payload:  # the SDK raises only for bodies with `errors`
                raise BadResponse(f"Amazon searchOrders: no orders in {str(payload)[:200]}")
            rows: list[tuple[Row, str]] = [
                to_order_row(shop.id, order) for order in payload.get("orders") or []
            ]
            token = response.next_token  # the SDK reads pagination.nextToken
            return Page(rows, str(token) if token else None)
        client, _ = self._sdk(Finances, shop, grant)
        query: dict[str, Any] = {"MaxResultsPerPage": 100}
        if cursor:
            query["NextToken"] = cursor
        else:
            query.update(PostedAfter=iso(start), PostedBefore=iso(end - 1))
        response = self._call(
            shop.id, "listFinancialEvents", lambda: client.list_financial_events(**query)
        )
        payload = response.payload or {}
        if "FinancialEvents" not in payload:
            raise BadResponse(f"Amazon listFinancialEvents: no events in {str(payload)[:200]}")
        events = (payload.get("FinancialEvents") or {}).get("RefundEventList") or []
        token = response.next_token
        return Page([to_refund_row(shop.id, e) for e in events], str(token) if token else None)

    def _call(self, shop_id: str, operation: str, request: Any) -> Any:
        rate, burst = RATES[operation]
        bucket = self.buckets.of(shop_id, operation, rate, burst)

        def attempt() -> Any:
            try:
                response = request()
            except SellingApiRequestThrottledException as exc:
                _follow(bucket, exc.headers)
                raise RateLimited(
                    f"Amazon {operation}: QuotaExceeded", code="QuotaExceeded"
                ) from None
            except SellingApiForbiddenException as exc:
                if "expired" in str(getattr(exc, "message", "")).lower():
                    raise TokenExpired(f"Amazon {operation}: {exc.message}") from None
                raise ConnectorError(
                    f"Amazon {operation}: access denied ({getattr(exc, 'message', '')}); "
                    "check the region and the app's roles",
                    code="Unauthorized",
                ) from None
            except SellingApiException as exc:
                if exc.code >= 500:
                    raise Transient(f"Amazon {operation}: HTTP {exc.code}") from None
                raise ConnectorError(
                    f"Amazon {operation}: {getattr(exc, 'amzn_code', '')} "
                    f"{getattr(exc, 'message', '')}",
                    code=str(getattr(exc, "amzn_code", "")),
                ) from None
            _follow(bucket, response.headers)
            return response

        return call(bucket, self.clock, attempt)


def _follow(bucket: TokenBucket, headers: Any) -> None:
    """Space calls by the rate Amazon says it applies (x-amzn-RateLimit-Limit)."""
    value = (headers or {}).get("x-amzn-RateLimit-Limit")
    try:
        if value is not None:
            bucket.set_rate(float(value))
    except ValueError:
        pass
