"""The shop connectors wired into the application: the scheduled sync and the notice to the
admins when a shop's authorization is revoked (through the notifier and outbox)."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.chat.messages import Reply, Target
from bot.chat.notifier import Notifier
from bot.i18n import texts
from connectors.clock import Clock, SystemClock
from connectors.registry import build_connectors, build_sync
from connectors.settings import ConnectorSettings
from connectors.sync import RevokedNotice, SyncService
from connectors.tokens import SecretKeyMissing
from kpi_engine.organisation import Organisation


def revoked_notice(organisation: Organisation, notifier: Notifier) -> RevokedNotice:
    """Tell every admin, privately on each connected chat platform, how to re-connect."""

    def notify(shop_id: str, platform: str, reason: str, now: int) -> None:
        shop = organisation.shops.get(shop_id)
        name = shop.name if shop else shop_id
        command = f"kpibot connect {platform} --shop {shop_id}"
        for admin in organisation.people.values():
            if admin.role != "admin":
                continue
            language = admin.language or organisation.settings.default_language
            said = texts(language)(
                "ops.auth_revoked",
                shop=name,
                platform=platform,
                reason=reason,
                command=command,
            )
            for chat_platform in notifier.adapters:
                user = admin.chat.get(chat_platform)
                if not user:
                    continue
                key = f"revoked:{shop_id}:{now}:{chat_platform}:{user}"
                notifier.post(
                    Reply(said, language),
                    Target.direct(chat_platform, "", user),
                    key=key,
                    kind="notice",
                )
                break  # one platform per admin is enough

    return notify


def shop_sync(
    engine: Engine,
    organisation: Organisation,
    notifier: Notifier | None = None,
    *,
    settings: ConnectorSettings | None = None,
    clock: Clock | None = None,
) -> SyncService | None:
    """The sync service when a shop platform is configured (and KPIBOT_SECRET_KEY set); the
    admins are told of a revoked authorization through `notifier` (set `on_revoked` later
    when the notifier is made after the service)."""
    settings = settings or ConnectorSettings()
    clock = clock or SystemClock()
    connectors = build_connectors(settings, clock)
    if not connectors:
        return None
    try:
        return build_sync(
            engine,
            organisation,
            settings,
            clock,
            on_revoked=revoked_notice(organisation, notifier) if notifier else None,
            connectors=connectors,
        )
    except SecretKeyMissing:
        return None
