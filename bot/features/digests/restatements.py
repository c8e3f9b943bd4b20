"""Restatements: a number already posted — in a digest or a chat answer — that later changes
(late refunds, revised orders, an accepted appeal) by more than `restatement_percent` gets a
short "revised" notice where it was posted, in reply to the original message where the
platform has threads. What is watched and what moved is the engine's
(`kpi_engine.restatements`); this module words the notice and sends it."""

from __future__ import annotations

from sqlalchemy import Engine, select

from bot.chat.messages import Reply, Target
from bot.chat.notifier import Notifier
from kpi_engine.figures import Figures, format_value
from kpi_engine.models import OutboxMessage, PostedFigure
from kpi_engine.organisation import Organisation
from kpi_engine.restatements import WATCH_DAYS, mark_revised, record_posted, revisions

__all__ = ["check_restatements", "record_posted"]

_POSTED = PostedFigure.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def check_restatements(
    engine: Engine, organisation: Organisation, figures: Figures, notifier: Notifier, *, now: int
) -> int:
    """Post a notice for each watched number that moved too far; how many were posted."""
    query = (
        select(_POSTED, _OUTBOX.c.platform, _OUTBOX.c.channel, _OUTBOX.c.user)
        .add_columns(_OUTBOX.c.message_id, _OUTBOX.c.private)
        .join(_OUTBOX, _OUTBOX.c.key == _POSTED.c.outbox_key)
        .where(_POSTED.c.posted_at > now - WATCH_DAYS * 86400, _OUTBOX.c.state == "sent")
        .order_by(_POSTED.c.id)
    )
    with engine.connect() as conn:
        watched = conn.execute(query).mappings().all()
    posted = 0
    for revision in revisions(figures, watched, now=now):
        row, figure = revision.row, revision.figure
        kind, _, entity = str(row["scope"]).partition(":")
        if kind == "person":
            person = organisation.people[entity]
            language = person.language or organisation.teams[person.team].language
            name = person.name
        elif kind == "team":
            language, name = organisation.teams[entity].language, organisation.teams[entity].name
        elif kind == "shop":
            shop = organisation.shops[entity]
            team = organisation.teams.get(shop.team or "")
            language = team.language if team else organisation.settings.default_language
            name = shop.name
        else:
            language, name = organisation.settings.default_language, organisation.settings.name
        metric = organisation.catalogue.get(figure.metric)
        label = metric.name(language) if metric else figure.metric
        old = format_value(revision.before, figure.unit, figure.currency)
        new = format_value(figure.value, figure.unit, figure.currency)
        span = figure.period.label()
        if figure.unit == "ratio" and revision.before is not None and figure.value is not None:
            points = (figure.value - revision.before) * 100
            new += f" ({points:+.1f} pp)"
        text = (
            f"📝 更正：{name} {span} 的{label}已由 {old} 修订为 {new}"
            f"（迟到的退款、订单更新或已接受的申诉）。原数字见上面的消息。"
            if language == "zh"
            else f"📝 Revised: {name}'s {label} for {span} is now {new}, not {old} as posted "
            "(late refunds, order updates or an accepted appeal)."
        )
        target = Target(
            row["platform"],
            "",
            row["channel"],
            user=row["user"],
            thread=row["message_id"],  # in reply to the post, where threads exist
            private=row["private"],
        )
        key = f"revision:{row['id']}:{figure.value}"
        if notifier.post(
            Reply(text, language, thread=row["message_id"], private=row["private"]),
            target,
            key=key,
            kind="revision",
        ):
            posted += 1
        mark_revised(engine, row["id"], figure.value, now=now)
    return posted
