"""Restatements: a number already posted — in a digest or a chat answer — that later changes
(late refunds, revised orders, an accepted appeal) by more than `restatement_percent` gets a
short "revised" notice where it was posted, in the reader's language (the person's, team's or
organisation's), in reply to the original message where the platform has threads. What is
watched and what moved is the engine's (`kpi_engine.restatements`); this module words the
notice (`digest.revised`) and sends it."""

from __future__ import annotations

from sqlalchemy import Engine, select

from bot.chat.context import figure_text
from bot.chat.messages import Reply, Target
from bot.chat.notifier import Notifier
from bot.features.digests.dates import LocalSpan
from bot.i18n import texts
from bot.i18n.format import number
from bot.i18n.names import metric_name
from kpi_engine.figures import Figures
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
            language = organisation.language_of(person)
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
        t = texts(language)
        old = figure_text(revision.before, figure.unit, figure.currency, language)
        new = figure_text(figure.value, figure.unit, figure.currency, language)
        if figure.unit == "ratio" and revision.before is not None and figure.value is not None:
            change = (figure.value - revision.before) * 100
            points = ("+" if change >= 0 else "") + number(change, language, places=1)
            new = t("digest.revised.points", value=new, points=points)
        text = t(
            "digest.revised",
            name=name,
            span=LocalSpan(figure.period, language),
            metric=metric_name(organisation.catalogue, figure.metric, language),
            old=old,
            new=new,
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
