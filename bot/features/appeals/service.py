"""The conversation around appeals: a disputed number is raised in chat, reviewed in a thread
with the reviewer @mentioned, and decided with buttons or text.

"申诉 昨天GMV 应该是12000 订单 5791234,5791240" or "appeal gmv 2026-11-20 12000" opens an appeal
with a snapshot of the figure as reported; the appeal card goes to the team channel (else to the
reviewer directly) with the reviewer mentioned, and every later message about it replies in that
card's thread (on platforms without threads they all carry "申诉 #id"). The reviewer takes it
into review, accepts (a correction is recorded, the figure and scores change, and "revised"
notices go where the number was posted) or rejects it with a reason that goes to the
appellant; the appellant may withdraw it. Past its SLA the reviewer is reminded and their
manager told, once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine

from bot.chat.effects import Edit, Effect, Post, Result, RunSoon
from bot.chat.messages import Action, Button, KeyValue, Language, Mention, Reply, Target
from bot.chat.notifier import Notifier
from kpi_engine.appeals import AppealRow, AppealStore, correction_states
from kpi_engine.figures import Figures, format_value
from kpi_engine.instants import zone
from kpi_engine.organisation import Organisation, PersonConfig
from kpi_engine.periods import Period
from kpi_engine.scopes import Scope

REVIEW, ACCEPT, REJECT, WITHDRAW, START = (
    "appeal.review",
    "appeal.accept",
    "appeal.reject",
    "appeal.withdraw",
    "appeal.start",
)
APPEAL_ACTIONS = (REVIEW, ACCEPT, REJECT, WITHDRAW, START)
_MOVES = {REVIEW: "review", ACCEPT: "accept", REJECT: "reject", WITHDRAW: "withdraw"}
_STATES = {
    "open": ("待处理", "open"),
    "in_review": ("审核中", "in review"),
    "accepted": ("已接受", "accepted"),
    "rejected": ("已驳回", "rejected"),
    "withdrawn": ("已撤回", "withdrawn"),
}


_CONFIRMATIONS = ("确认", "confirm", "confirmed", "確認", "yes")


def _confirms(note: str | None) -> bool:
    """Does a reviewer's note confirm an implausible claim ("接受 7 确认", "accept 7 confirm")?"""
    return note is not None and note.strip().lower() in (
        "确认",
        "confirm",
        "confirmed",
        "確認",
        "yes",
    )


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

    def _money(self, appeal: AppealRow, value: Decimal | None) -> str:
        metric = self.organisation.catalogue.metrics.get(appeal.metric)
        return format_value(value, metric.unit if metric else "count", appeal.currency)

    def _metric(self, appeal: AppealRow, language: Language) -> str:
        metric = self.organisation.catalogue.metrics.get(appeal.metric)
        if metric is None:
            return appeal.metric
        return metric.name_zh if language == "zh" else metric.name_en

    def _period(self, appeal: AppealRow) -> str:
        first, last = appeal.first_day.isoformat(), appeal.last_day.isoformat()
        return first if first == last else f"{first}..{last}"

    def card(
        self, appeal: AppealRow, language: Language, *, mention: Mention | None = None
    ) -> Reply:
        """The appeal: what was reported, what is claimed, why, the evidence, the state."""
        zh = language == "zh"

        def t(a: str, b: str) -> str:
            return a if zh else b

        scope_name = self._name(appeal.scope.partition(":")[2])
        headline = t(
            f"申诉 #{appeal.id} · {scope_name} {self._metric(appeal, language)}",
            f"Appeal #{appeal.id} · {scope_name} {self._metric(appeal, language)}",
        )
        fields = [
            KeyValue(t("申诉人", "By"), self._name(appeal.appellant)),
            KeyValue(t("时间", "Period"), self._period(appeal)),
            KeyValue(t("报告值", "Reported"), self._money(appeal, appeal.reported_value)),
            KeyValue(t("申诉值", "Claimed"), self._money(appeal, appeal.claimed_value)),
            KeyValue(t("差额", "Difference"), self._money(appeal, appeal.delta)),
            KeyValue(t("审核人", "Reviewer"), self._name(appeal.reviewer)),
            KeyValue(t("状态", "State"), _STATES[appeal.state][0 if zh else 1]),
        ]
        if appeal.reason:
            fields.append(KeyValue(t("理由", "Reason"), appeal.reason))
        if appeal.evidence:
            fields.append(KeyValue(t("证据", "Evidence"), ", ".join(appeal.evidence)))
        if appeal.decision_note:
            fields.append(KeyValue(t("结论", "Decision"), appeal.decision_note))
        buttons: tuple[Button, ...] = ()
        ref = f"{appeal.id}:{appeal.version}"
        if appeal.state in ("open", "in_review"):
            buttons = (
                *(
                    (Button(t("受理", "Take into review"), REVIEW, ref),)
                    if appeal.state == "open"
                    else ()
                ),
                Button(t("接受", "Accept"), ACCEPT, ref, "primary"),
                Button(t("驳回", "Reject"), REJECT, ref, "danger"),
                Button(t("撤回", "Withdraw"), WITHDRAW, ref),
            )
        as_of = (
            datetime.fromtimestamp(appeal.reported_as_of, zone(appeal.timezone)).strftime(
                "%Y-%m-%d %H:%M"
            )
            if appeal.reported_as_of
            else "—"
        )
        lines = [headline, *(f"{f.label}: {f.value}" for f in fields)]
        if buttons:
            lines.append(
                t(
                    f"回复「接受 {appeal.id}」或「驳回 {appeal.id} 原因」",
                    f'Reply "accept {appeal.id}" or "reject {appeal.id} <reason>"',
                )
            )
        return Reply(
            "\n".join(lines),
            language,
            headline=headline,
            fields=tuple(fields),
            buttons=buttons,
            context=t(f"截至 {as_of} 的数据快照", f"snapshot as of {as_of}"),
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
        zh = language == "zh"
        if claimed is None:
            return Result(
                Reply(
                    "请写上你认为正确的数字，例如「申诉 昨天GMV 应该是12000 订单 5791234」。"
                    if zh
                    else "Please give the number you think is right, "
                    'e.g. "appeal gmv 2026-11-20 12000".',
                    language,
                )
            )
        figure = self.figures.figure(metric, Scope("person", person.id), period, now=now)
        open_already = self.store.open_for(person.id, metric, period.first, period.last)
        if open_already is not None:
            return Result(
                Reply(
                    f"这个数字已有申诉 #{open_already.id} 在处理中，可以在它的讨论里补充。"
                    if zh
                    else f"Appeal #{open_already.id} on this number is already open; add to it "
                    "in its thread.",
                    language,
                    private=True,
                )
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
        hours = self.organisation.settings.appeals.sla_hours
        reported = self._money(appeal, appeal.reported_value)
        answer = Reply(
            f"已提交申诉 #{appeal.id}：{self._metric(appeal, language)} {self._period(appeal)} "
            f"报告 {reported}，申诉 {self._money(appeal, claimed)}。"
            f"审核人 {reviewer.name}，{hours} 小时内处理。"
            if zh
            else f"Appeal #{appeal.id} filed: {self._metric(appeal, language)} "
            f"{self._period(appeal)} reported {reported}, claimed {self._money(appeal, claimed)}. "
            f"Reviewer {reviewer.name}, within {hours} h.",
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
        zh = language == "zh"
        appeal = self.store.get(appeal_id) if 0 < appeal_id < 2**31 else None
        allowed = appeal is not None and (
            person.id == appeal.appellant if move == "withdraw" else self.may_decide(person, appeal)
        )
        if appeal is None or not allowed:
            # The same answer whether the appeal does not exist or is not theirs to decide.
            return Result(
                Reply(
                    f"没有你可以处理的申诉 #{appeal_id}。"
                    if zh
                    else f"There is no appeal #{appeal_id} that you may act on.",
                    language,
                )
            )
        if move == "reject" and not note and (version is None or version == appeal.version):
            return Result(
                Reply(
                    f"请写上驳回理由：「驳回 {appeal_id} <理由>」。"
                    if zh
                    else f'Please give a reason: "reject {appeal_id} <reason>".',
                    language,
                )
            )
        claimed = appeal.claimed_value
        if (
            move == "accept"
            and claimed is not None
            and not self.plausible(appeal.reported_value, claimed)
            and not _confirms(note)
        ):
            return Result(
                Reply(
                    f"申诉值 {self._money(appeal, claimed)} 远超报告值 "
                    f"{self._money(appeal, appeal.reported_value)}。"
                    f"确认无误请回复「接受 {appeal_id} 确认」。"
                    if zh
                    else f"The claimed {self._money(appeal, claimed)} is far beyond the reported "
                    f"{self._money(appeal, appeal.reported_value)}. If it is right, reply "
                    f'"accept {appeal_id} confirm".',
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
            state = _STATES[current.state][0 if zh else 1]
            return Result(
                Reply(
                    f"这张卡片已过期：申诉 #{appeal_id} 现在是「{state}」，未做更改。"
                    if zh
                    else f"This card is out of date: appeal #{appeal_id} is {state}; "
                    "nothing was changed.",
                    language,
                )
            )
        done = moved.appeal
        assert done is not None
        state = _STATES[done.state][0 if zh else 1]
        return Result(
            Reply(
                f"申诉 #{appeal_id} {state}。" if zh else f"Appeal #{appeal_id} {state}.", language
            ),
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
        zh = team.language == "zh"
        state = _STATES[appeal.state][0 if zh else 1]
        note = (
            f"：{appeal.decision_note}"
            if zh and appeal.decision_note
            else f": {appeal.decision_note}"
            if appeal.decision_note
            else ""
        )
        text = (
            f"申诉 #{appeal.id} {state}（{actor.name}）{note}"
            if zh
            else f"Appeal #{appeal.id} {state} by {actor.name}{note}"
        )
        effects.append(
            self._in_thread(
                appeal, Reply(text, team.language), f"appeal:{appeal.id}:{appeal.state}"
            )
        )
        if appeal.state in ("accepted", "rejected"):
            appellant = self.organisation.people[appeal.appellant]
            language = self.organisation.language_of(appellant)
            zh = language == "zh"
            claimed = self._money(appeal, appeal.claimed_value)
            if appeal.state == "accepted":
                told = (
                    f"你的申诉 #{appeal.id} 已接受：{self._period(appeal)} "
                    f"的数字已更正为 {claimed}。"
                    if zh
                    else f"Your appeal #{appeal.id} was accepted: {self._period(appeal)} "
                    f"is corrected to {claimed}."
                )
            else:
                told = (
                    f"你的申诉 #{appeal.id} 被驳回：{appeal.decision_note}"
                    if zh
                    else f"Your appeal #{appeal.id} was rejected: {appeal.decision_note}"
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
            example = (
                f"申诉 {period} {metric} 应该是 <数字> 订单 <订单号>"
                if language == "zh"
                else f"appeal {metric} {period} <the right number> orders <ids>"
            )
            return Result(
                Reply(
                    f"请回复：{example}" if language == "zh" else f"Reply with: {example}",
                    language,
                )
            )
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
            if not self.store.remind(appeal, now, boss):
                continue
            reminded += 1
            for person_id in (appeal.reviewer, boss):
                if person_id is None or person_id not in self.organisation.people:
                    continue
                language = self.organisation.language_of(self.organisation.people[person_id])
                zh = language == "zh"
                who = self._name(appeal.appellant)
                text = (
                    f"申诉 #{appeal.id}（{who}）已超过处理时限，请尽快处理。"
                    if zh
                    else f"Appeal #{appeal.id} ({who}) is past its deadline; please decide it."
                )
                reply = replace(
                    self.card(appeal, language),
                    text=text + "\n" + self.card(appeal, language).text,
                    headline=text,
                )
                self.notifier.apply(
                    self._tell(
                        person_id,
                        appeal.platform,
                        reply,
                        key=f"appeal:{appeal.id}:remind:{person_id}",
                    )
                )
        told = f", {diverged} diverged corrections shown" if diverged else ""
        return f"{reminded} appeals reminded{told}"

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
            zh = team.language == "zh"
            raw, claimed = self._money(appeal, state.raw), self._money(appeal, state.claimed)
            text = (
                f"申诉 #{appeal.id}：{self._period(appeal)} 的原始数据现在是 {raw}，"
                f"已超过接受的 {claimed}。更正不再叠加（不会重复计算），数字以原始数据为准，"
                "请复核。"
                if zh
                else f"Appeal #{appeal.id}: the data for {self._period(appeal)} now says {raw}, "
                f"past the accepted {claimed}. The correction no longer adds anything (it never "
                "counts twice); the figure is the data's. Please review."
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
