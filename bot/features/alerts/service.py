"""The conversation around alerts: evaluation rounds, cards with buttons, who is told, who may
act, escalation, and updating every card of an alert after someone acts on it.

`AlertService.run(now)` is the scheduler's alert job: it evaluates every rule
(`kpi_engine.alerts`), wakes snoozed alerts whose time is up, notifies new and due alerts (the
owner privately, the team channel with only what the channel may see; quiet hours respected),
repeats unacknowledged ones up to `max_repeats` by updating their cards, and escalates one level
up the manager chain each `escalate_after_minutes`. `AlertService.act` is what a button click or
a text command ("ack 42", "确认 42", "snooze 42 2h", "暂停 42 2小时") does: it checks who is
acting, applies the action to exactly the alert (and, from a card, the version) shown, and then
updates the alert's cards where the platform allows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from bot.chat.access import Access
from bot.chat.effects import Edit, Result
from bot.chat.messages import Action, Button, KeyValue, Language, Reply, Target
from bot.chat.notifier import Notifier
from kpi_engine.alerts import AlertRow, AlertStore, observe, snooze_until
from kpi_engine.figures import Figures, format_value
from kpi_engine.instants import zone
from kpi_engine.models import AlertPost, OutboxMessage
from kpi_engine.organisation import AlertRuleConfig, Organisation, PersonConfig, TeamConfig
from kpi_engine.targets import Plans

log = logging.getLogger(__name__)
_POSTS = AlertPost.__table__  # type: ignore[attr-defined]
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]

# Card buttons: action ids and what they do.
ACK, SNOOZE, SNOOZE_TOMORROW, FALSE_ALARM = (
    "alert.ack",
    "alert.snooze",
    "alert.snooze_tomorrow",
    "alert.false_alarm",
)
ALERT_ACTIONS = (ACK, SNOOZE, SNOOZE_TOMORROW, FALSE_ALARM)
_VERBS = {ACK: "ack", SNOOZE: "snooze", SNOOZE_TOMORROW: "snooze", FALSE_ALARM: "false_alarm"}
_STATES = {
    "firing": ("告警中", "firing"),
    "acknowledged": ("已确认", "acknowledged"),
    "snoozed": ("已暂停", "snoozed"),
    "resolved": ("已解决", "resolved"),
}


@dataclass(frozen=True)
class Outcome:
    """What acting on an alert did, to tell the person who acted."""

    ok: bool
    alert: AlertRow | None
    reply: Reply
    effects: tuple[Edit, ...] = ()


class AlertService:
    """Alert rounds and actions for one organisation."""

    def __init__(
        self,
        organisation: Organisation,
        engine: Engine,
        figures: Figures,
        plans: Plans,
        notifier: Notifier,
        platforms: list[str],
        access: Access | None = None,
    ) -> None:
        self.organisation = organisation
        self.access = access or Access(organisation)
        self.engine = engine
        self.figures = figures
        self.plans = plans
        self.notifier = notifier
        self.platforms = [p for p in platforms if p != "console"] or list(platforms)
        self.store = AlertStore(engine)
        self.rules = {rule.id: rule for rule in organisation.alerts}

    # -- who ------------------------------------------------------------------------------

    def owners(self, alert: AlertRow) -> list[PersonConfig]:
        """Who an alert is about and answers for it: the person; for a shop, the operators
        assigned to it on the day it opened; else the team's manager (then the admins)."""
        org = self.organisation
        scope = alert.subject
        if scope.kind == "person" and scope.id in org.people:
            return [org.people[scope.id]]
        team = None
        if scope.kind == "team":
            team = org.teams.get(scope.id)
        elif scope.kind == "shop" and scope.id in org.shops:
            opened = datetime.fromtimestamp(alert.opened_at, zone(self._timezone(alert))).date()
            operators = [
                org.people[a.person]
                for a in org.assignments
                if a.shop == scope.id
                and a.valid_from <= opened
                and (a.valid_to is None or opened <= a.valid_to)
                and a.person in org.people
                and org.people[a.person].role == "operator"
            ]
            if operators:
                return list({p.id: p for p in operators}.values())
            team = org.teams.get(org.shops[scope.id].team or "")
        if team is not None and team.manager and team.manager in org.people:
            return [org.people[team.manager]]
        return [p for p in org.people.values() if p.role == "admin"]

    def chain(self, person: PersonConfig) -> list[PersonConfig]:
        """The person's management chain, ending at the first admin (the access policy's)."""
        return self.access.chain(person)

    def may_act(self, person: PersonConfig, alert: AlertRow) -> bool:
        """The owner, their managers and admins."""
        return self.access.may_act_for(person, self.owners(alert))

    def _language(self, person: PersonConfig) -> Language:
        return self.organisation.language_of(person)

    # -- cards ----------------------------------------------------------------------------

    def _name(self, alert: AlertRow) -> str:
        scope = alert.subject
        org = self.organisation
        if scope.kind == "person" and scope.id in org.people:
            return org.people[scope.id].name
        if scope.kind == "team" and scope.id in org.teams:
            return org.teams[scope.id].name
        if scope.kind == "shop" and scope.id in org.shops:
            return org.shops[scope.id].name
        return "公司" if scope.kind == "company" else scope.id

    def _metric(self, alert: AlertRow, language: Language) -> str:
        metric = self.organisation.catalogue.metrics.get(alert.metric)
        if metric is None:
            return alert.metric
        return metric.name_zh if language == "zh" else metric.name_en

    def _amount(self, alert: AlertRow, value: Decimal | None) -> str:
        metric = self.organisation.catalogue.metrics.get(alert.metric)
        unit = metric.unit if metric else "count"
        return format_value(value, unit, alert.currency)

    def reason(self, alert: AlertRow, language: Language) -> str:
        """Why the alert fired, in words."""
        zh = language == "zh"
        detail = alert.detail
        if alert.reason == "below_pace":
            pace = Decimal(detail.get("pace", "0")) * 100
            limit = Decimal(detail.get("limit", "0")) * 100
            expected = self._amount(alert, alert.threshold)
            return (
                f"进度 {pace:.0f}%，低于 {limit:.0f}%（按计划此时应达 {expected}）"
                if zh
                else f"pace {pace:.0f}%, under {limit:.0f}% (the plan expects "
                f"{self._amount(alert, alert.threshold)} by now)"
            )
        if alert.reason == "below":
            return (
                f"低于 {self._amount(alert, alert.threshold)}"
                if zh
                else f"below {self._amount(alert, alert.threshold)}"
            )
        if alert.reason == "above":
            return (
                f"高于 {self._amount(alert, alert.threshold)}"
                if zh
                else f"above {self._amount(alert, alert.threshold)}"
            )
        if alert.reason == "change":
            change = detail.get("change", "?")
            before = self._amount(alert, alert.threshold)
            return (
                f"较上期变化 {change}%（上期 {before}）"
                if zh
                else f"{change}% against the previous period ({before})"
            )
        hours = alert.value
        source = detail.get("source", "orders")
        return (
            f"{source} 已 {hours} 小时没有新数据（上限 {alert.threshold} 小时）"
            if zh
            else f"no new {source} data for {hours} h (limit {alert.threshold} h)"
        )

    def card(self, alert: AlertRow, language: Language, *, for_channel: bool = False) -> Reply:
        """The alert as a card: person, number, target and reason; buttons while it is open."""
        zh = language == "zh"

        def t(a: str, b: str) -> str:
            return a if zh else b

        name, metric = self._name(alert), self._metric(alert, language)
        state = _STATES[alert.state][0 if zh else 1]
        headline = t(
            f"⚠️ 告警 #{alert.id} · {name} {metric}", f"⚠️ Alert #{alert.id} · {name} {metric}"
        )
        show_value = not for_channel or self.organisation.settings.ranking_for_members == "values"
        reason = self.reason(alert, language)
        fields = [KeyValue(t("对象", "Who"), name), KeyValue(t("指标", "Metric"), metric)]
        if show_value:
            fields.append(KeyValue(t("当前", "Now"), self._amount(alert, alert.value)))
            if alert.target is not None:
                fields.append(KeyValue(t("目标", "Target"), self._amount(alert, alert.target)))
            fields.append(KeyValue(t("原因", "Reason"), reason))
        fields.append(KeyValue(t("状态", "State"), state))
        if alert.notified > 1:
            fields.append(KeyValue(t("提醒", "Reminders"), str(alert.notified - 1)))
        status = self._status_line(alert, language)
        if status:
            fields.append(KeyValue(t("处理", "Handled"), status))
        lines = [headline, *(f"{f.label}: {f.value}" for f in fields)]
        buttons: tuple[Button, ...] = ()
        if alert.state in ("firing", "snoozed", "acknowledged"):
            ref = f"{alert.id}:{alert.version}"
            buttons = (
                Button(t("确认", "Ack"), ACK, ref, "primary"),
                Button(t("暂停1小时", "Snooze 1 h"), SNOOZE, f"{ref}:1h"),
                Button(t("暂停到明天", "Snooze until tomorrow"), SNOOZE_TOMORROW, ref),
                Button(t("不是问题", "Not a problem"), FALSE_ALARM, ref, "danger"),
                Button(
                    t("查看明细", "Show breakdown"),
                    "ask",
                    self._breakdown_question(alert, language),
                ),
            )
            daily = len(alert.period_key) == 10  # an ISO day: the appeal names it as it is
            if alert.subject.kind == "person" and alert.reason != "stale" and daily:
                # The person may dispute the number itself (bot/appeals.py).
                buttons += (
                    Button(
                        t("申诉", "Dispute"), "appeal.start", f"{alert.metric}|{alert.period_key}"
                    ),
                )
            lines.append(
                t(
                    f"回复「确认 {alert.id}」或「暂停 {alert.id} 2小时」",
                    f'Reply "ack {alert.id}" or "snooze {alert.id} 2h"',
                )
            )
        settled = t("暂定数据", "provisional") if alert.provisional else t("已结算", "settled")
        context = f"{alert.period_key} · {settled} · {t('级别', 'level')} {alert.level}"
        return Reply(
            "\n".join(lines),
            language,
            headline=headline,
            fields=tuple(fields),
            buttons=buttons,
            context=context,
        )

    def _breakdown_question(self, alert: AlertRow, language: Language) -> str:
        scope = alert.subject
        who = ""
        if scope.kind == "person" and scope.id in self.organisation.people:
            who = self.organisation.people[scope.id].name + " "
        period = alert.period_key
        return (
            f"{who}{period} {alert.metric} 按天"
            if language == "zh"
            else f"{who}{alert.metric} {period} by day"
        )

    def _status_line(self, alert: AlertRow, language: Language) -> str:
        zh = language == "zh"
        org = self.organisation
        tz = self._timezone(alert)

        def who(pid: str | None) -> str:
            return org.people[pid].name if pid and pid in org.people else (pid or "")

        def clock(at: int) -> str:
            return datetime.fromtimestamp(at, zone(tz)).strftime("%m-%d %H:%M")

        if alert.state == "acknowledged" and alert.acked_at:
            return (
                f"已确认 by {who(alert.acked_by)} {clock(alert.acked_at)}"
                if zh
                else f"acknowledged by {who(alert.acked_by)} {clock(alert.acked_at)}"
            )
        if alert.state == "snoozed" and alert.snoozed_until:
            return (
                f"暂停到 {clock(alert.snoozed_until)}"
                if zh
                else f"snoozed until {clock(alert.snoozed_until)}"
            )
        if alert.state == "resolved" and alert.resolved_at:
            by = (
                "自动"
                if alert.resolved_by == "kpibot" and zh
                else "automatically"
                if alert.resolved_by == "kpibot"
                else who(alert.resolved_by)
            )
            if alert.false_alarm:
                return (
                    f"{by} 标记为不是问题 {clock(alert.resolved_at)}"
                    if zh
                    else f"marked not a problem by {by} {clock(alert.resolved_at)}"
                )
            return (
                f"已解决（{by}）{clock(alert.resolved_at)}"
                if zh
                else f"resolved ({by}) {clock(alert.resolved_at)}"
            )
        return ""

    def _timezone(self, alert: AlertRow) -> str:
        return self.figures.timezone(alert.subject)

    # -- notifying ------------------------------------------------------------------------

    def _quiet(self, rule: AlertRuleConfig, alert: AlertRow, now: int) -> bool:
        if rule.quiet_hours is None:
            return False
        start, end = rule.quiet_hours
        local = datetime.fromtimestamp(now, zone(self._timezone(alert))).strftime("%H:%M")
        return start <= local < end if start < end else local >= start or local < end

    def _targets(
        self, alert: AlertRow, rule: AlertRuleConfig
    ) -> list[tuple[Target, Language, bool]]:
        """(target, language, channel?) for the alert's current level."""
        found: list[tuple[Target, Language, bool]] = []
        people: list[PersonConfig] = []
        if "owner" in rule.notify:
            people.extend(self.owners(alert))
        if alert.level:
            for owner in self.owners(alert):
                people.extend(self.chain(owner)[: alert.level])
        seen: set[str] = set()
        for person in people:
            if person.id in seen:
                continue
            seen.add(person.id)
            for platform in self.platforms:
                user = person.chat.get(platform)
                if user:
                    found.append((Target.direct(platform, "", user), self._language(person), False))
                    break
        if "channel" in rule.notify:
            team = self._team(alert)
            if team is not None:
                for platform in self.platforms:
                    channel = team.channels.get(platform)
                    if channel:
                        found.append((Target(platform, "", channel), team.language, True))
        return found

    def _team(self, alert: AlertRow) -> TeamConfig | None:
        org = self.organisation
        scope = alert.subject
        if scope.kind == "person" and scope.id in org.people:
            return org.teams[org.people[scope.id].team]
        if scope.kind == "team":
            return org.teams.get(scope.id)
        if scope.kind == "shop" and scope.id in org.shops:
            return org.teams.get(org.shops[scope.id].team or "")
        return None

    def notify(
        self,
        alert: AlertRow,
        rule: AlertRuleConfig,
        now: int,
        *,
        count: bool = True,
        only: PersonConfig | None = None,
    ) -> int:
        """Post the alert's card to everyone it goes to now (or `only` to one person, whom an
        escalation just reached: the others' cards are updated instead); how many messages."""
        posted, names = 0, []
        targets = self._targets(alert, rule)
        if only is not None:
            users = {only.chat.get(p) for p in self.platforms}
            targets = [t for t in targets if t[0].user in users and t[0].user]
        for target, language, channel in targets:
            key = (
                f"alert:{alert.id}:v{alert.version}:n{alert.notified}:"
                f"{target.platform}:{target.channel or target.user}"
            )
            if self.notifier.post(
                self.card(alert, language, for_channel=channel), target, key=key, kind="alert"
            ):
                posted += 1
                names.append(target.channel or target.user or "")
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            insert(_POSTS).values(alert_id=alert.id, outbox_key=key, created_at=now)
                        )
                except IntegrityError:
                    pass
        if count:
            self.store.notified(alert, now, names)
        return posted

    def edits(self, alert_id: int) -> list[Edit]:
        """Edits bringing every card of the alert to its current state (through the outbox,
        where the platform can edit messages)."""
        alert = self.store.get(alert_id)
        if alert is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_OUTBOX.c.key, _OUTBOX.c.platform, _OUTBOX.c.user)
                .join(_POSTS, _POSTS.c.outbox_key == _OUTBOX.c.key)
                .where(_POSTS.c.alert_id == alert_id, _OUTBOX.c.kind == "alert")
            ).all()
        found = []
        for key, platform, user in rows:
            language, for_channel = self._reader(platform, user)
            card = self.card(alert, language, for_channel=for_channel)
            found.append(Edit(key, card, key=f"{key}:edit:v{alert.version}:n{alert.notified}"))
        return found

    def refresh(self, alert_id: int) -> int:
        """Update every card of the alert to its current state; how many edits were stored."""
        return self.notifier.apply(self.edits(alert_id))

    def _reader(self, platform: str, user: str | None) -> tuple[Language, bool]:
        org = self.organisation
        if user:
            person = org.person_by_chat_id(platform, user)
            if person is not None:
                return self._language(person), False
        return org.settings.default_language, user is None

    # -- the round ------------------------------------------------------------------------

    def run(self, now: int) -> str:
        """One evaluation round: a line saying what happened."""
        opened = resolved = notices = escalated = 0
        for rule in self.rules.values():
            for observation in observe(rule, self.figures, self.plans, self.organisation, now):
                outcome, alert = self.store.record(observation, now)
                if outcome == "opened":
                    opened += 1
                elif outcome == "resolved" and alert is not None:
                    resolved += 1
                    self.refresh(alert.id)
        for alert in self.store.wake(now):
            log.info("alert %s: snooze ended", alert.id)
            self.refresh(alert.id)  # the cards' buttons act on the alert as it is now
        for alert in self.store.open_alerts(self.rules):
            rule = self.rules[alert.rule]
            if alert.state != "firing" or self._quiet(rule, alert, now):
                continue
            if alert.notified == 0:
                notices += self.notify(alert, rule, now)
                continue
            waited = now - (alert.last_notified_at or alert.opened_at)
            if (
                rule.escalate_after_minutes
                and now - alert.opened_at >= rule.escalate_after_minutes * 60 * (alert.level + 1)
            ):
                to = self._escalation_target(alert)
                if to is not None and self.store.escalate(alert, now, to.id):
                    escalated += 1
                    self.refresh(alert.id)  # earlier cards show the new level and version
                    raised = self.store.get(alert.id)
                    assert raised is not None
                    notices += self.notify(raised, rule, now, only=to)
                    continue
            if alert.notified <= rule.max_repeats and waited >= rule.repeat_minutes * 60:
                # A repeat updates the cards already posted; where none can be updated, the
                # card is posted again.
                self.store.notified(alert, now, ["(cards updated)"])
                if not self.refresh(alert.id):
                    current = self.store.get(alert.id)
                    assert current is not None
                    notices += self.notify(current, rule, now, count=False)
        return f"{opened} opened, {resolved} resolved, {escalated} escalated, {notices} messages"

    def _escalation_target(self, alert: AlertRow) -> PersonConfig | None:
        for owner in self.owners(alert):
            chain = self.chain(owner)
            if alert.level < len(chain):
                return chain[alert.level]
        return None

    # -- acting ---------------------------------------------------------------------------

    def act(
        self,
        person: PersonConfig,
        alert_id: int,
        verb: str,
        now: int,
        *,
        version: int | None = None,
        snooze: str | None = None,
        note: str | None = None,
        language: Language | None = None,
    ) -> Outcome:
        """Apply an action for `person` (answered in `language`, else theirs); the card
        updates happen here too."""
        language = language or self._language(person)
        zh = language == "zh"
        alert = self.store.get(alert_id) if 0 < alert_id < 2**31 else None
        if alert is None or not self.may_act(person, alert):
            # The same answer for an alert that does not exist and one the person may not
            # act on: the refusal reveals nothing. A refusal is audited once per person.
            if alert is not None:
                self.store.refused(alert_id, person.id, verb, now)
            return Outcome(
                False,
                None,
                Reply(
                    f"没有你可以处理的告警 #{alert_id}。"
                    if zh
                    else f"There is no alert #{alert_id} that you may act on.",
                    language,
                ),
            )
        until = None
        if verb == "snooze":
            until = snooze_until(now, snooze or "1h", self._timezone(alert))
            if until is None:
                return Outcome(
                    False,
                    alert,
                    Reply(
                        "暂停多久？例如「暂停 42 2小时」或「暂停 42 明天」。"
                        if zh
                        else 'Snooze for how long? e.g. "snooze 42 2h" or "snooze 42 tomorrow".',
                        language,
                    ),
                )
        acted = self.store.act(
            alert_id, verb, person.id, now, version=version, until=until, note=note
        )
        if not acted.ok:
            current = acted.alert or alert
            state = _STATES[current.state][0 if zh else 1]
            return Outcome(
                False,
                current,
                Reply(
                    f"这张卡片已过期：告警 #{alert_id} 现在是「{state}」，未做更改。"
                    if zh
                    else f"This card is out of date: alert #{alert_id} is now {state}; "
                    "nothing was changed.",
                    language,
                ),
            )
        assert acted.alert is not None
        done = {
            "ack": ("已确认", "acknowledged"),
            "snooze": ("已暂停", "snoozed"),
            "false_alarm": ("已标记为不是问题", "marked not a problem"),
            "resolve": ("已解决", "resolved"),
        }[verb]
        status = self._status_line(acted.alert, language)
        text = (
            f"告警 #{alert_id} {done[0]}。{status}"
            if zh
            else f"Alert #{alert_id} {done[1]}. {status}"
        )
        return Outcome(
            True, acted.alert, Reply(text.strip(), language), tuple(self.edits(alert_id))
        )

    def on_action(self, action: Action, person: PersonConfig, now: int) -> Result | None:
        """A card button: the answer for the person who clicked, and the cards' edits."""
        parts = action.value.split(":")
        try:
            alert_id, version = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return None
        verb = _VERBS[action.action]
        snooze = (
            "tomorrow"
            if action.action == SNOOZE_TOMORROW
            else (parts[2] if len(parts) > 2 else None)
        )
        outcome = self.act(person, alert_id, verb, now, version=version, snooze=snooze)
        return Result(outcome.reply, outcome.effects)

    def summary(self, person: PersonConfig, language: Language) -> Reply:
        """The open alerts `person` may act on."""
        zh = language == "zh"
        mine = [a for a in self.store.open_alerts(self.rules) if self.may_act(person, a)]
        if not mine:
            return Reply("没有待处理的告警。" if zh else "No open alerts.", language)
        lines = [
            f"#{a.id} {self._name(a)} {self._metric(a, language)} · "
            f"{_STATES[a.state][0 if zh else 1]} · {self.reason(a, language)}"
            for a in mine
        ]
        headline = f"待处理告警（{len(mine)}）" if zh else f"Open alerts ({len(mine)})"
        return Reply(
            "\n".join([headline, *lines]),
            language,
            headline=headline,
            fields=tuple(
                KeyValue(f"#{a.id}", line.split(" ", 1)[1])
                for a, line in zip(mine, lines, strict=True)
            ),
        )
