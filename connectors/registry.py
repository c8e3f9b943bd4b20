"""Build the configured platforms' connectors and the sync service from settings."""

from __future__ import annotations

from sqlalchemy import Engine

from connectors.amazon import AmazonConnector
from connectors.base import Connector
from connectors.clock import Clock
from connectors.settings import ConnectorSettings
from connectors.shopee import ShopeeConnector
from connectors.sync import RevokedNotice, SyncService
from connectors.tiktok import TikTokConnector
from connectors.tokens import ConnectionStore, TokenCipher
from kpi_engine.organisation import Organisation

PLATFORMS = ("tiktok", "amazon", "shopee")


def build_connectors(settings: ConnectorSettings, clock: Clock) -> dict[str, Connector]:
    """A connector for each platform whose app credentials are set."""
    found: dict[str, Connector] = {}
    if settings.tiktok_app_key and settings.tiktok_app_secret:
        found["tiktok"] = TikTokConnector(
            settings.tiktok_app_key,
            settings.tiktok_app_secret.get_secret_value(),
            clock,
            service_id=settings.tiktok_service_id or "",
            api_url=settings.tiktok_api_url,
            auth_url=settings.tiktok_auth_url,
            authorize_url=settings.tiktok_authorize_url,
            qps=settings.tiktok_qps,
        )
    if settings.amazon_client_id and settings.amazon_client_secret:
        found["amazon"] = AmazonConnector(
            settings.amazon_client_id,
            settings.amazon_client_secret.get_secret_value(),
            clock,
            app_id=settings.amazon_app_id or "",
            api_url=settings.amazon_api_url,
            lwa_url=settings.amazon_lwa_url,
            consent_url=settings.amazon_consent_url,
        )
    if settings.shopee_partner_id and settings.shopee_partner_key:
        found["shopee"] = ShopeeConnector(
            settings.shopee_partner_id,
            settings.shopee_partner_key.get_secret_value(),
            clock,
            api_url=settings.shopee_api_url,
            qps=settings.shopee_qps,
        )
    return found


def connection_store(engine: Engine, settings: ConnectorSettings) -> ConnectionStore:
    """The token store (raises SecretKeyMissing without KPIBOT_SECRET_KEY)."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    return ConnectionStore(engine, TokenCipher(secret))


def build_sync(
    engine: Engine,
    organisation: Organisation,
    settings: ConnectorSettings,
    clock: Clock,
    *,
    on_revoked: RevokedNotice | None = None,
    connectors: dict[str, Connector] | None = None,
) -> SyncService:
    """The sync service over the configured connectors."""
    return SyncService(
        engine,
        organisation,
        build_connectors(settings, clock) if connectors is None else connectors,
        connection_store(engine, settings),
        clock,
        history_days=settings.history_days,
        on_revoked=on_revoked,
    )
