"""Figure questions: progress, ranking, who is behind pace, why, compare, breakdown, score."""

from __future__ import annotations

from bot.chat.registry import Command, Feature, Registry
from bot.core import Core
from bot.features.figures.handlers import (
    handle_behind,
    handle_breakdown,
    handle_compare,
    handle_progress,
    handle_ranking,
    handle_score,
    handle_why,
)


def install(registry: Registry, core: Core) -> None:
    """Register the figure questions (general ones last: "今天GMV" is progress only when no
    more specific question is asked)."""
    for precedence, intent, handler in (
        (49, "behind", handle_behind),
        (50, "why", handle_why),
        (51, "score", handle_score),
        (52, "ranking", handle_ranking),
        (53, "compare", handle_compare),
        (54, "breakdown", handle_breakdown),
        (90, "progress", handle_progress),
    ):
        registry.command(Command(intent, "figures", handler, precedence))


FEATURE = Feature("figures", install)
