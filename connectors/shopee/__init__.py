"""Shopee Open Platform v2: HMAC-signed calls on a thin httpx client (no SDK fits)."""

from connectors.shopee.client import ShopeeConnector

__all__ = ["ShopeeConnector"]
