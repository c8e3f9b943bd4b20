"""Runtime settings, read from environment variables (and an optional .env file)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_CONFIG_DIR = Path(__file__).parent / "example"
# Starting organisations for `kpibot init --template NAME` (one folder of YAML files each).
TEMPLATES_DIR = Path(__file__).parent / "templates"


def _user_cache() -> Path:
    """`$XDG_CACHE_HOME/kpibot`, else `~/.cache/kpibot`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kpibot"


class Settings(BaseSettings):
    """Everything the deployment decides; the organisation itself lives in the YAML config dir."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Core
    database_url: str = Field("sqlite:///./kpibot.db", validation_alias="KPIBOT_DATABASE_URL")
    config_dir: Path = Field(Path("./config"), validation_alias="KPIBOT_CONFIG_DIR")
    # The checked configuration is cached here, keyed by its files' bytes (kpi_engine/
    # config_cache.py); default $XDG_CACHE_HOME/kpibot, else ~/.cache/kpibot.
    cache_dir: Path = Field(default_factory=_user_cache, validation_alias="KPIBOT_CACHE_DIR")
    # A bootstrap key with every scope (admin); named, scoped keys: `kpibot apikey create`.
    api_key: SecretStr | None = Field(None, validation_alias="KPIBOT_API_KEY")
    # Serve the API's documentation (/docs, /openapi.json) — off unless enabled.
    api_docs: bool = Field(False, validation_alias="KPIBOT_API_DOCS")
    # The largest body `POST /api/v1/import/<kind>` reads; larger ones get 413 unread.
    import_max_bytes: int = Field(
        256 * 1024 * 1024, gt=0, validation_alias="KPIBOT_IMPORT_MAX_BYTES"
    )
    auto_migrate: bool = Field(True, validation_alias="KPIBOT_AUTO_MIGRATE")
    log_level: str = Field("INFO", validation_alias="KPIBOT_LOG_LEVEL")
    # Run as if it were this moment (`2026-11-24T10:30`, a local time in the company's zone,
    # or with an offset): one-shot commands answer exactly as they would have then; a server
    # starts its clock there and lets it run. Unset: the system clock.
    now: str | None = Field(None, validation_alias="KPIBOT_NOW")
    # Digests and checks run in `kpibot serve` when a chat platform is connected; every
    # replica may run them (each firing happens once), or set this false on all but some.
    scheduler: bool = Field(True, validation_alias="KPIBOT_SCHEDULER")
    # How long a sender may hold a claimed outbox message before another process (or this one,
    # restarted after a crash) may deliver it again.
    outbox_lease_seconds: float = Field(60.0, gt=0, validation_alias="KPIBOT_OUTBOX_LEASE_SECONDS")
    # Chat deliveries: with `chat_queue` the web process only verifies, records and
    # acknowledges them, and `kpibot worker` processes answer them (PostgreSQL; `kpibot serve
    # --workers N` sets it). A process answering a delivery holds it for the lease; if it dies,
    # another takes it over when the lease runs out.
    chat_queue: bool = Field(False, validation_alias="KPIBOT_CHAT_QUEUE")
    inbound_lease_seconds: float = Field(
        60.0, gt=0, validation_alias="KPIBOT_INBOUND_LEASE_SECONDS"
    )

    # The dashboard (bot/web): links are signed with a key derived from the secret (also the
    # shop tokens' key); they open at the public address, are valid for minutes and once.
    secret_key: SecretStr | None = Field(None, validation_alias="KPIBOT_SECRET_KEY")
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="KPIBOT_PUBLIC_URL")
    dashboard_link_minutes: int = Field(
        10, ge=1, le=60, validation_alias="KPIBOT_DASHBOARD_LINK_MINUTES"
    )
    dashboard_session_hours: int = Field(
        12, ge=1, le=24 * 7, validation_alias="KPIBOT_DASHBOARD_SESSION_HOURS"
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="KPIBOT_SLACK_API_URL")

    # Feishu / Lark
    feishu_app_id: str | None = Field(None, validation_alias="FEISHU_APP_ID")
    feishu_app_secret: SecretStr | None = Field(None, validation_alias="FEISHU_APP_SECRET")
    feishu_verification_token: SecretStr | None = Field(
        None, validation_alias="FEISHU_VERIFICATION_TOKEN"
    )
    feishu_encrypt_key: SecretStr | None = Field(None, validation_alias="FEISHU_ENCRYPT_KEY")
    feishu_connection: str = Field("http", validation_alias="FEISHU_CONNECTION")
    feishu_domain: str = Field("https://open.feishu.cn", validation_alias="KPIBOT_FEISHU_DOMAIN")

    # DingTalk
    dingtalk_client_id: str | None = Field(None, validation_alias="DINGTALK_CLIENT_ID")
    dingtalk_client_secret: SecretStr | None = Field(
        None, validation_alias="DINGTALK_CLIENT_SECRET"
    )
    dingtalk_robot_code: str | None = Field(None, validation_alias="DINGTALK_ROBOT_CODE")
    dingtalk_connection: str = Field("stream", validation_alias="DINGTALK_CONNECTION")
    dingtalk_api_url: str = Field(
        "https://api.dingtalk.com", validation_alias="KPIBOT_DINGTALK_API_URL"
    )
    # The older API host: media upload and custom group robots.
    dingtalk_oapi_url: str = Field(
        "https://oapi.dingtalk.com", validation_alias="KPIBOT_DINGTALK_OAPI_URL"
    )
    # An interactive card template (card platform) with the parameters described in README;
    # without one, buttons degrade to the text commands the message already names.
    dingtalk_card_template: str | None = Field(None, validation_alias="DINGTALK_CARD_TEMPLATE_ID")
    # A custom group robot's signing secret (SEC…), for teams whose DingTalk channel is the
    # robot's webhook URL (digests only).
    dingtalk_robot_secret: SecretStr | None = Field(None, validation_alias="DINGTALK_ROBOT_SECRET")
