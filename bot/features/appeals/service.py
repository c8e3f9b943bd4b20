"""The conversation around appeals: a disputed number is raised in chat, reviewed in a thread
with the reviewer @mentioned, and decided with buttons or text.

"申诉 昨天GMV 应该是12000 订单 5791234,5791240", "appeal gmv 2026-11-20 12000" or
"異議申し立て 昨日の売上 正しくは12000" opens an appeal with a snapshot of the figure as
reported; the appeal card goes to the team channel (else to the reviewer directly) with the
reviewer mentioned, and every later message about it replies in that card's thread (on
platforms without threads they all carry "#id"). The reviewer takes it into review, accepts
(a correction is recorded, the figure and scores change, and "revised" notices go where the
number was posted) or rejects it with a reason that goes to the appellant; the appellant may
withdraw it. Past its SLA the reviewer is reminded and their manager told, once. Every text
is in its reader's language (message ids `appeals.*`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine

from bot.chat.context import figure_text
from bot.chat.effects import Edit, Effect, Post, Result, RunSoon
from bot.chat.messages import Action, Button, KeyValue, Language, Mention, Reply, Target
from bot.chat.notifier import Notifier
from bot.i18n import texts
from bot.i18n.format import day, moment
from bot.i18n.names import metric_name
from kpi_engine.appeals import AppealRow, AppealStore, correction_states
from kpi_engine.figures import Figures, format_value
from kpi_engine.instants import zone
from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope
from kpi_engine.units import unit_of_work

log = logging.getLogger(__name__)

REVIEW, ACCEPT, REJECT, WITHDRAW, START = (
    "appeal.review",
    "appeal.accept",
    "appeal.reject",
    "appeal.withdraw",
    "appeal.start",
)
APPEAL_ACTIONS = (REVIEW, ACCEPT, REJECT, WITHDRAW, START)
_MOVES = {REVIEW: "review", ACCEPT: "accept", REJECT: "reject", WITHDRAW: "withdraw"}


def _state(state: str, language: Language) -> str:
    """An appeal's state as the reader calls it."""
    return texts(language)(f"appeals.state.{state}")


_CONFIRMATIONS = ("确认", "confirm", "confirmed", "確認", "yes")


def _confirms(note: str | None) -> bool:
    """Does a reviewer's note confirm an implausible claim ("接受 7 确认", "accept 7 confirm")?"""
    return note is not None and note.strip().lower() in _CONFIRMATIONS


class AppealService:
    """Appeals for one organisation."""

    MAX_REASON = 500  # the longest reason kept (README "Limits")

    def __init__(
        self, organisation: Organisation, engine: Engine, figures: Figures, notifier: Notifier
    ) -> None:
        self.organisation = organisation
        self.engine = engine
        self.figures = figures
        self.notifier = notifier
        self.store = AppealStore(engine)

    # -- who ------------------------------------------------------------------------------

    def reviewer_of(self, person: PersonConfig) -> PersonConfig:
        """The person's manager (or their team's), else an admin; per `appeals.reviewer`."""
        org = self.organisation
        admins = [p for p in org.people.values() if p.role == "admin"]
        if org.settings.appeals.reviewer == "manager":
            boss = person.manager or org.teams[person.team].manager
            if boss and boss in org.people and boss != person.id:
                return org.people[boss]
        return admins[0] if admins else person

    def may_decide(self, person: PersonConfig, appeal: AppealRow) -> bool:
        """The reviewer, whoever it was escalated to, their managers, and admins."""
        if person.role == "admin" or person.id in (appeal.reviewer, appeal.escalated_to):
            return True
        reviewer = self.organisation.people.get(appeal.reviewer)
        return reviewer is not None and person.id in (
            reviewer.manager,
            self.organisation.teams[reviewer.team].manager,
        )

    # -- cards ----------------------------------------------------------------------------

    def _name(self, person_id: str) -> str:
        person = self.organisation.people.get(person_id)
        return person.name if person else person_id

    def _money(self, appeal: AppealRow, value: Decimal | None, language: Language) -> str:
        """A value of the appeal's metric: as Chinese and English cards have always shown it
        ("1,234.50 CNY"), in the Japanese locale's way for Japanese readers."""
        metric = self.organisation.catalogue.metrics.get(appeal.metric)
        unit = metric.unit if metric else "count"
        if language == "ja":
            return figure_text(value, unit, appeal.currency, language)
        return format_value(value, unit, appeal.currency)

    def _metric(self, appeal: AppealRow, language: Language) -> str:
        """The metric's name in the reader's language."""
        return metric_name(self.organisation.catalogue, appeal.metric, language)

    def _period(self, appeal: AppealRow, language: Language) -> str:
        """The days appealed: ISO dates for Chinese and English, the Japanese way for Japanese."""

        def written(value: date) -> str:
            return day(value, language) if language == "ja" else value.isoformat()

        first, last = written(appeal.first_day), written(appeal.last_day)
        if appeal.first_day == appeal.last_day:
            return first
        return texts(language)("appeals.period.range", first=first, last=last)

    def card(
        self, appeal: AppealRow, language: Language, *, mention: Mention | None = None
    ) -> Reply:
        """The appeal: what was reported, what is claimed, why, the evidence, the state."""
        t = texts(language)
        scope_name = self._name(appeal.scope.partition(":")[2])
        headline = t(
            "appeals.card.headline",
            id=appeal.id,
            scope=scope_name,
            metric=self._metric(appeal, language),
        )
        fields = [
            KeyValue(t("appeals.card.by"), self._name(appeal.appellant)),
            KeyValue(t("appeals.card.period"), self._period(appeal, language)),
            KeyValue(
                t("appeals.card.reported"), self._money(appeal, appeal.reported_value, language)
            ),
            KeyValue(
                t("appeals.card.claimed"), self._money(appeal, appeal.claimed_value, language)
            ),
            KeyValue(t("appeals.card.difference"), self._money(appeal, appeal.delta, language)),
            KeyValue(t("appeals.card.reviewer"), self._name(appeal.reviewer)),
            KeyValue(t("appeals.card.state"), _state(appeal.state, language)),
        ]
        if appeal.reason:
            fields.append(KeyValue(t("appeals.card.reason"), appeal.reason))
        if appeal.evidence:
            fields.append(KeyValue(t("appeals.card.evidence"), ", ".join(appeal.evidence)))
        if appeal.decision_note:
            fields.append(KeyValue(t("appeals.card.decision"), appeal.decision_note))
        buttons: tuple[Button, ...] = ()
        ref = f"{appeal.id}:{appeal.version}"
        if appeal.state in ("open", "in_review"):
            buttons = (
                *(
                    (Button(t("appeals.button.review"), REVIEW, ref),)
                    if appeal.state == "open"
                    else ()
                ),
                Button(t("appeals.button.accept"), ACCEPT, ref, "primary"),
                Button(t("appeals.button.reject"), REJECT, ref, "danger"),
                Button(t("appeals.button.withdraw"), WITHDRAW, ref),
                # 📊 opens the clicker's own dashboard (a private link under their permissions).
                Button(t("appeals.button.dashboard"), "dashboard.open", ""),
            )
        as_of = "—"
        if appeal.reported_as_of and language == "ja":
            as_of = moment(appeal.reported_as_of, appeal.timezone, language)
        elif appeal.reported_as_of:
            as_of = datetime.fromtimestamp(appeal.reported_as_of, zone(appeal.timezone)).strftime(
                "%Y-%m-%d %H:%M"
            )
        lines = [headline, *(f"{f.label}: {f.value}" for f in fields)]
        if buttons:
            lines.append(t("appeals.card.how", id=appeal.id))
        return Reply(
            "\n".join(lines),
            language,
            headline=headline,
            fields=tuple(fields),
            buttons=buttons,
            context=t("appeals.card.snapshot", as_of=as_of),
            mentions=(mention,) if mention else (),
        )

    def _chat_id(self, person: PersonConfig, platform: str) -> str | None:
        return person.chat.get(platform)

    @staticmethod
    def root(appeal_id: int) -> str:
        """The outbox key of an appeal's card: its thread, and what edits replace."""
        return f"appeal:{appeal_id}:root"

    def _in_thread(self, appeal: AppealRow, reply: Reply, key: str) -> Post:
        """A message in the appeal's thread (or, where there are no threads, naming it)."""
        reply = replace(
            reply,
            text=reply.text if f"#{appeal.id}" in reply.text else f"#{appeal.id} {reply.text}",
        )
        target = Target(appeal.platform, appeal.workspace, appeal.channel)
        if not appeal.channel:
            reviewer = self.organisation.people.get(appeal.reviewer)
            user = reviewer.chat.get(appeal.platform) if reviewer else None
            target = Target.direct(appeal.platform, appeal.workspace, user or "")
        return Post(reply, target, key, kind="appeal", thread_of=self.root(appeal.id))

    def _tell(self, person_id: str, platform: str, reply: Reply, key: str) -> list[Post]:
        person = self.organisation.people.get(person_id)
        user = person.chat.get(platform) if person else None
        if not user:
            return []
        return [Post(reply, Target.direct(platform, "", user), key, kind="appeal")]

    def plausible(self, reported: Decimal | None, claimed: Decimal) -> bool:
        """Is a claim within the configured multiple of what was reported? (Beyond it the
        reviewer must confirm the correction explicitly.)"""
        if claimed < 0:
            return False
        ratio = self.organisation.settings.appeals.max_claim_ratio
        if reported is None or reported <= 0:
            return claimed <= self.organisation.settings.appeals.max_claim_without_report
        return claimed <= reported * ratio

    # -- opening ----------------------------------------------------------------------------

    def start(
        self,
        person: PersonConfig,
        metric: str,
        period: Period,
        claimed: Decimal | None,
        *,
        reason: str,
        evidence: list[str],
        platform: str,
        workspace: str,
        language: Language,
        now: int,
    ) -> Result:
        """Open an appeal; the answer for the appellant, and the card for the reviewer."""
        t = texts(language)
        if claimed is None:
            return Result(Reply(t("appeals.start.no_claim"), language))
        figure = self.figures.figure(metric, Scope("person", person.id), period, now=now)
        open_already = self.store.open_for(person.id, metric, period.first, period.last)
        if open_already is not None:
            return Result(
                Reply(t("appeals.start.already_open", id=open_already.id), language, private=True)
            )
        reviewer = self.reviewer_of(person)
        team = self.organisation.teams[person.team]
        channel = team.channels.get(platform) or ""
        appeal = self.store.open(
            appellant=person.id,
            figure=figure,
            scope=f"person:{person.id}",
            claimed=claimed,
            reason=reason[: self.MAX_REASON],
            evidence=evidence[:20],
            reviewer=reviewer.id,
            platform=platform,
            workspace=workspace,
            channel=channel,
            now=now,
            sla_hours=self.organisation.settings.appeals.sla_hours,
        )
        user = self._chat_id(reviewer, platform)
        mention = Mention(user, reviewer.name) if user else None
        reviewer_language = self.organisation.language_of(reviewer)
        card = self.card(appeal, team.language if channel else reviewer_language, mention=mention)
        target = (
            Target(platform, workspace, channel)
            if channel
            else Target.direct(platform, workspace, user or "")
        )
        answer = Reply(
            t(
                "appeals.start.filed",
                id=appeal.id,
                metric=self._metric(appeal, language),
                period=self._period(appeal, language),
                reported=self._money(appeal, appeal.reported_value, language),
                claimed=self._money(appeal, claimed, language),
                reviewer=reviewer.name,
                hours=self.organisation.settings.appeals.sla_hours,
            ),
            language,
            private=True,
        )
        return Result(answer, (Post(card, target, self.root(appeal.id), kind="appeal"),))

    # -- deciding ---------------------------------------------------------------------------

    def decide(
        self,
        person: PersonConfig,
        appeal_id: int,
        move: str,
        now: int,
        *,
        note: str | None = None,
        version: int | None = None,
        language: Language | None = None,
    ) -> Result:
        """review / accept / reject (with a reason) / withdraw; the answer for who acted."""
        language = language or self.organisation.language_of(person)
        t = texts(language)
        appeal = self.store.get(appeal_id) if 0 < appeal_id < 2**31 else None
        allowed = appeal is not None and (
            person.id == appeal.appellant if move == "withdraw" else self.may_decide(person, appeal)
        )
        if appeal is None or not allowed:
            # The same answer whether the appeal does not exist or is not theirs to decide.
            return Result(Reply(t("appeals.decide.none", id=appeal_id), language))
        if move == "reject" and not note and (version is None or version == appeal.version):
            return Result(Reply(t("appeals.decide.reason_needed", id=appeal_id), language))
        claimed = appeal.claimed_value
        if (
            move == "accept"
            and claimed is not None
            and not self.plausible(appeal.reported_value, claimed)
            and not _confirms(note)
        ):
            return Result(
                Reply(
                    t(
                        "appeals.decide.implausible",
                        id=appeal_id,
                        claimed=self._money(appeal, claimed, language),
                        reported=self._money(appeal, appeal.reported_value, language),
                    ),
                    language,
                )
            )
        moved = self.store.move(
            appeal_id,
            move,
            person.id,
            now,
            note=None if move == "accept" and _confirms(note) else note,
            version=version,
        )
        if not moved.ok:
            current = moved.appeal or appeal
            state = _state(current.state, language)
            return Result(Reply(t("appeals.decide.stale", id=appeal_id, state=state), language))
        done = moved.appeal
        assert done is not None
        state = _state(done.state, language)
        return Result(
            Reply(t("appeals.decide.done", id=appeal_id, state=state), language),
            tuple(self._after(done, person)),
        )

    def _after(self, appeal: AppealRow, actor: PersonConfig) -> list[Effect]:
        """The card updated, a note in the thread, the appellant told, the posted numbers
        re-checked."""
        team = self.organisation.teams[self.organisation.people[appeal.appellant].team]
        effects: list[Effect] = [
            Edit(
                self.root(appeal.id),
                self.card(appeal, team.language),
                key=f"appeal:{appeal.id}:card:v{appeal.version}",
            )
        ]
        state = _state(appeal.state, team.language)
        text = texts(team.language)(
            "appeals.thread.moved_note" if appeal.decision_note else "appeals.thread.moved",
            id=appeal.id,
            state=state,
            actor=actor.name,
            note=appeal.decision_note,
        )
        effects.append(
            self._in_thread(
                appeal, Reply(text, team.language), f"appeal:{appeal.id}:{appeal.state}"
            )
        )
        if appeal.state in ("accepted", "rejected"):
            appellant = self.organisation.people[appeal.appellant]
            language = self.organisation.language_of(appellant)
            told = texts(language)(
                f"appeals.told.{appeal.state}",
                id=appeal.id,
                period=self._period(appeal, language),
                claimed=self._money(appeal, appeal.claimed_value, language),
                note=appeal.decision_note,
            )
            effects += self._tell(
                appeal.appellant, appeal.platform, Reply(told, language), f"appeal:{appeal.id}:told"
            )
        if appeal.state == "accepted":
            # Where the number was posted (digests), a "revised" notice in reply to the post.
            effects.append(RunSoon("restatements"))
        return effects

    def on_action(self, action: Action, person: PersonConfig, now: int) -> Result | None:
        """A button on an appeal card (or "Dispute" on an answer)."""
        language = self.organisation.language_of(person)
        if action.action == START:
            metric, _, period = action.value.partition("|")
            hint = texts(language)("appeals.start.hint", metric=metric, period=period)
            return Result(Reply(hint, language))
        parts = action.value.split(":")
        try:
            appeal_id, version = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return None
        # A rejection from the button asks for the reason ("驳回 7 <理由>"), as in text.
        return self.decide(person, appeal_id, _MOVES[action.action], now, version=version)

    # -- the SLA ----------------------------------------------------------------------------

    def check(self, now: int) -> str:
        """Remind reviewers of overdue appeals and tell their managers, once each; tell the
        reviewer, once, when the data of an accepted appeal goes past what was accepted."""
        diverged = self._divergences(now)
        reminded = 0
        for appeal in self.store.overdue(now):
            reviewer = self.organisation.people.get(appeal.reviewer)
            boss = None
            if reviewer is not None:
                boss = reviewer.manager or self.organisation.teams[reviewer.team].manager
                if boss == reviewer.id:
                    boss = None
            try:
                # Marked reminded only with its reminders made: an appeal whose card cannot
                # be made stays due (and logged), and the next ones are still reminded.
                with unit_of_work(self.engine):
                    if not self.store.remind(appeal, now, boss):
                        continue
                    posts = self._reminders(self.store.get(appeal.id) or appeal, boss)
            except Exception:
                log.exception("reminding of appeal %s failed: it stays overdue", appeal.id)
                continue
            reminded += 1
            self.notifier.apply(posts)
        told = f", {diverged} diverged corrections shown" if diverged else ""
        return f"{reminded} appeals reminded{told}"

    def _reminders(self, appeal: AppealRow, boss: str | None) -> list[Post]:
        """The reviewer's and their manager's reminder of an overdue appeal: its card (with
        buttons for its current version) under a line saying it is overdue."""
        posts: list[Post] = []
        for person_id in (appeal.reviewer, boss):
            if person_id is None or person_id not in self.organisation.people:
                continue
            language = self.organisation.language_of(self.organisation.people[person_id])
            text = texts(language)("appeals.remind", id=appeal.id, who=self._name(appeal.appellant))
            card = self.card(appeal, language)
            reply = replace(card, text=text + "\n" + card.text, headline=text)
            key = f"appeal:{appeal.id}:remind:{person_id}"
            posts += self._tell(person_id, appeal.platform, reply, key=key)
        return posts

    def _divergences(self, now: int) -> int:
        """Accepted appeals (of the last 60 days) whose raw data has passed the claimed value:
        the correction adds nothing any more (it never counts twice), and the reviewer is told
        in the appeal's thread, once."""
        told = 0
        for state in correction_states(self.figures, now=now, since=now - 60 * 86400):
            if state.appeal_id is None or not state.diverged:
                continue
            appeal = self.store.get(state.appeal_id)
            if appeal is None or not self.store.note_divergence(appeal.id, state.raw, now):
                continue
            team = self.organisation.teams[self.organisation.people[appeal.appellant].team]
            text = texts(team.language)(
                "appeals.diverged",
                id=appeal.id,
                period=self._period(appeal, team.language),
                raw=self._money(appeal, state.raw, team.language),
                claimed=self._money(appeal, state.claimed, team.language),
            )
            reviewer = self.organisation.people.get(appeal.reviewer)
            user = reviewer.chat.get(appeal.platform) if reviewer else None
            mention = (Mention(user, reviewer.name),) if user and reviewer else ()
            self.notifier.apply(
                [
                    self._in_thread(
                        appeal,
                        Reply(text, team.language, mentions=mention),
                        f"appeal:{appeal.id}:diverged",
                    )
                ]
            )
            told += 1
        return told
