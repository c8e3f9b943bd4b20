"""Restatements: a number already posted that later changes (late refunds, revised orders)
by more than `restatement_percent` gets a short "revised" notice where it was posted, in
reply to the original message where the platform has threads."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Engine, insert, select, update

from bot.chat.messages import Reply, Target
from bot.chat.notifier import Notifier
from bot.digests import Watched
from kpi_engine.figures import Figures, format_value
from kpi_engine.models import OutboxMessage, PostedFigure
from kpi_engine.organisation import Organisation
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope

_POSTED = PostedFigure.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
# Posts older than this are history: their numbers are settled and no longer re-checked.
WATCH_DAYS = 14


def record_posted(engine: Engine, key: str, watched: Iterable[Watched], *, now: int) -> None:
    """Remember the numbers posted in the outbox message `key` (once per message)."""
    rows = [
        {
            "outbox_key": key,
            "scope": f"{w.scope.kind}:{w.scope.id}",
            "metric": w.metric,
            "first_day": w.period.first,
            "last_day": w.period.last,
            "timezone": w.period.timezone,
            "value": None if w.value is None else str(w.value),
            "posted_at": now,
        }
        for w in watched
    ]
    if not rows:
        return
    with engine.begin() as conn:
        exists = conn.execute(select(_POSTED.c.id).where(_POSTED.c.outbox_key == key).limit(1))
        if exists.first() is None:
            conn.execute(insert(_POSTED), rows)


def _moved(before: Decimal | None, after: Decimal | None, percent: Decimal) -> bool:
    if before == after:
        return False
    if before is None or after is None or before == 0:
        return True
    return abs(after - before) * 100 > abs(before) * percent


def check_restatements(
    engine: Engine, organisation: Organisation, figures: Figures, notifier: Notifier, *, now: int
) -> int:
    """Post a notice for each watched number that moved too far; how many were posted."""
    percent = organisation.settings.restatement_percent
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
    for row in watched:
        kind, _, entity = row["scope"].partition(":")
        scope = Scope(kind, entity)
        if kind == "team" and entity not in organisation.teams:
            continue
        if kind == "person" and entity not in organisation.people:
            continue
        period = Period("custom", row["first_day"], row["last_day"], row["timezone"])
        if row["first_day"] == row["last_day"]:
            period = Period("day", row["first_day"], row["last_day"], row["timezone"])
        figure = figures.figure(row["metric"], scope, period, now=now)
        last = row["revised_value"] if row["revised_value"] is not None else row["value"]
        before = None if last is None else Decimal(last)
        if not _moved(before, figure.value, percent):
            continue
        if kind == "team":
            language = organisation.teams[entity].language
            name = organisation.teams[entity].name
        else:
            person = organisation.people[entity]
            language = person.language or organisation.teams[person.team].language
            name = person.name
        old = format_value(before, figure.unit, figure.currency)
        new = format_value(figure.value, figure.unit, figure.currency)
        span = period.label()
        text = (
            f"📝 更正：{name} {span} 的 {row['metric'].upper()} 已由 {old} 修订为 {new}"
            f"（迟到的退款或订单更新）。原数字见上面的消息。"
            if language == "zh"
            else f"📝 Revised: {name}'s {row['metric'].upper()} for {span} is now {new}, "
            f"not {old} as posted (late refunds or order updates)."
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
            Reply(text, language, thread=row["message_id"]), target, key=key, kind="revision"
        ):
            posted += 1
        with engine.begin() as conn:
            conn.execute(
                update(_POSTED)
                .where(_POSTED.c.id == row["id"])
                .values(
                    revised_value=None if figure.value is None else str(figure.value),
                    revised_at=now,
                )
            )
    return posted
