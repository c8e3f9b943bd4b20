"""TikTok Shop Open API (202309+): HMAC-signed calls on a thin httpx client."""

from connectors.tiktok.client import TikTokConnector

__all__ = ["TikTokConnector"]
