"""The chat features, each a package that registers its commands, buttons and jobs. Adding a
feature is one new package and one line here (ARCHITECTURE.md, "Adding a feature")."""

from __future__ import annotations

from bot.chat.registry import Feature


def features() -> list[Feature]:
    """Every feature, in the order they are installed."""
    from bot.features import alerts, appeals, dashboard, data, digests, figures, help, notes

    return [
        help.FEATURE,
        figures.FEATURE,
        notes.FEATURE,
        alerts.FEATURE,
        appeals.FEATURE,
        digests.FEATURE,
        data.FEATURE,
        dashboard.FEATURE,
    ]
