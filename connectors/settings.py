"""The connectors' settings: platform app credentials and base URLs (every one configurable)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorSettings(BaseSettings):
    """What the deployment decides for the shop connectors (environment or .env)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    secret_key: SecretStr | None = Field(None, validation_alias="KPIBOT_SECRET_KEY")
    # Where the platforms send the seller back: https://<host> of `kpibot serve`.
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="KPIBOT_PUBLIC_URL")
    sync_every_minutes: int = Field(10, ge=1, validation_alias="KPIBOT_SYNC_EVERY_MINUTES")
    history_days: int = Field(30, ge=1, validation_alias="KPIBOT_SYNC_HISTORY_DAYS")

    # TikTok Shop (Partner Center app)
    tiktok_app_key: str | None = Field(None, validation_alias="TIKTOK_APP_KEY")
    tiktok_app_secret: SecretStr | None = Field(None, validation_alias="TIKTOK_APP_SECRET")
    tiktok_service_id: str | None = Field(None, validation_alias="TIKTOK_SERVICE_ID")
    tiktok_api_url: str = Field(
        "https://open-api.tiktokglobalshop.com", validation_alias="KPIBOT_TIKTOK_API_URL"
    )
    tiktok_auth_url: str = Field(
        "https://auth.tiktok-shops.com", validation_alias="KPIBOT_TIKTOK_AUTH_URL"
    )
    tiktok_authorize_url: str = Field(
        "https://services.tiktokshop.com/open/authorize",
        validation_alias="KPIBOT_TIKTOK_AUTHORIZE_URL",
    )
    tiktok_qps: float = Field(50.0, gt=0, validation_alias="KPIBOT_TIKTOK_QPS")

    # Amazon Selling Partner API (LWA app)
    amazon_client_id: str | None = Field(None, validation_alias="AMAZON_LWA_CLIENT_ID")
    amazon_client_secret: SecretStr | None = Field(
        None, validation_alias="AMAZON_LWA_CLIENT_SECRET"
    )
    amazon_app_id: str | None = Field(None, validation_alias="AMAZON_SP_APP_ID")
    # Unset: the marketplace's regional endpoint (Far East for JP, SG, AU).
    amazon_api_url: str | None = Field(None, validation_alias="KPIBOT_AMAZON_API_URL")
    amazon_lwa_url: str = Field(
        "https://api.amazon.com/auth/o2/token", validation_alias="KPIBOT_AMAZON_LWA_URL"
    )
    amazon_consent_url: str = Field(
        "https://sellercentral.amazon.co.jp/apps/authorize/consent",
        validation_alias="KPIBOT_AMAZON_CONSENT_URL",
    )

    # Shopee Open Platform v2
    shopee_partner_id: str | None = Field(None, validation_alias="SHOPEE_PARTNER_ID")
    shopee_partner_key: SecretStr | None = Field(None, validation_alias="SHOPEE_PARTNER_KEY")
    shopee_api_url: str = Field(
        "https://partner.shopeemobile.com", validation_alias="KPIBOT_SHOPEE_API_URL"
    )
    # Shopee publishes no figure; keep well under what its "too many requests" answers allow.
    shopee_qps: float = Field(10.0, gt=0, validation_alias="KPIBOT_SHOPEE_QPS")

    def redirect_uri(self, platform: str) -> str:
        """The OAuth callback `kpibot serve` answers for `platform`."""
        return f"{self.public_url.rstrip('/')}/oauth/{platform}/callback"
