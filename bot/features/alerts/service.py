"""The conversation around alerts: evaluation rounds, cards with buttons, who is told, who may
act, escalation, and updating every card of an alert after someone acts on it.

`AlertService.run(now)` is the scheduler's alert job: it evaluates every rule
(`kpi_engine.alerts`), wakes snoozed alerts whose time is up, notifies new and due alerts (the
owner privately, the team channel with only what the channel may see; quiet hours respected),
repeats unacknowledged ones up to `max_repeats` by updating their cards, and escalates one level
up the manager chain each `escalate_after_minutes`. `AlertService.act` is what a button click or
a text command ("ack 42", "确认 42", "确認 42", "snooze 42 2h", "暂停 42 2小时",
"スヌーズ 42 2時間") does: it checks who is acting, applies the action to exactly the alert (and,
from a card, the version) shown, and then updates the alert's cards where the platform allows.

Every text comes from the message catalogue (`alerts.*`), in each reader's language. Numbers
keep the "1,234.50 CNY" and "85%" Chinese and English cards have always shown; Japanese
readers get them as the Japanese locale writes them (`bot.i18n.format`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from bot.chat.access import Access
from bot.chat.context import ASK, figure_text
from bot.chat.effects import Edit, Result
from bot.chat.messages import Action, Button, KeyValue, Language, Reply, Target
from bot.chat.notifier import Notifier
from bot.i18n import has_text, texts
from bot.i18n.format import moment, number, percent
from bot.i18n.names import metric_name
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
# Japanese snooze lengths ("2時間", "30分", "明日") as the store reads them ("2h", "30m",
# "tomorrow"); Chinese and English ones it reads as they are.
_JA_LENGTH = re.compile(r"(\d+)\s*(時間|分間?)")
_JA_TOMORROW = frozenset({"明日", "明日まで", "あした", "あしたまで"})


def _snooze_length(spec: str) -> str:
    """A snooze length as `snooze_until` reads it."""
    text = unicodedata.normalize("NFKC", spec).strip()
    if text in _JA_TOMORROW:
        return "tomorrow"
    found = _JA_LENGTH.fullmatch(text)
    if found:
        return found.group(1) + ("h" if found.group(2) == "時間" else "m")
    return spec


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
        assigned to it on the day it opened; else the team's owner of the rule's metric
        (`owners` in the team's config), else the team's manager; for the company (or a shop
        of no team), the company's owner of the metric (`organisation.owners`), else the
        admins."""
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
        if team is not None:
            owner = self._metric_owner(team.owners, alert.rule)
            if owner is not None:
                return [owner]
        if team is not None and team.manager and team.manager in org.people:
            return [org.people[team.manager]]
        if team is None:
            owner = self._metric_owner(org.settings.owners, alert.rule)
            if owner is not None:
                return [owner]
        return [p for p in org.people.values() if p.role == "admin"]

    def _metric_owner(self, owners: Mapping[str, str], rule_id: str) -> PersonConfig | None:
        """The person a team's config names as owner of the rule's metric (by key or alias)."""
        rule = self.rules.get(rule_id)
        catalogue = self.organisation.catalogue
        metric = catalogue.get(rule.metric) if rule is not None else None
        if metric is None:
            return None
        for name, person in owners.items():
            found = catalogue.get(name)
            if found is not None and found.key == metric.key and person in self.organisation.people:
                return self.organisation.people[person]
        return None

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
        return scope.id

    def _subject(self, alert: AlertRow, language: Language) -> str:
        """Who or what the alert is about, as the reader calls it."""
        if alert.subject.kind == "company":
            return texts(language)("alerts.company")
        return self._name(alert)

    def _metric(self, alert: AlertRow, language: Language) -> str:
        """The metric's name in the reader's language."""
        return metric_name(self.organisation.catalogue, alert.metric, language)

    def _amount(self, alert: AlertRow, value: Decimal | None, language: Language) -> str:
        metric = self.organisation.catalogue.metrics.get(alert.metric)
        unit = metric.unit if metric else "count"
        if language == "ja":
            return figure_text(value, unit, alert.currency, language)
        return format_value(value, unit, alert.currency)  # as Chinese and English cards were

    def _percent(self, ratio: Decimal, language: Language) -> str:
        if language == "ja":
            return percent(ratio, language)
        return f"{ratio * 100:.0f}%"  # as Chinese and English cards were

    def reason(self, alert: AlertRow, language: Language) -> str:
        """Why the alert fired, in words."""
        t = texts(language)
        detail = alert.detail
        threshold = self._amount(alert, alert.threshold, language)
        if alert.reason == "below_pace":
            return t(
                "alerts.reason.below_pace",
                pace=self._percent(Decimal(detail.get("pace", "0")), language),
                limit=self._percent(Decimal(detail.get("limit", "0")), language),
                expected=threshold,
            )
        if alert.reason in ("below", "above"):
            return t(f"alerts.reason.{alert.reason}", threshold=threshold)
        if alert.reason == "change":
            return t("alerts.reason.change", change=detail.get("change", "?"), before=threshold)
        source = detail.get("source", "orders")
        return t(
            "alerts.reason.stale",
            source=t(f"alerts.source.{source}") if has_text(f"alerts.source.{source}") else source,
            hours=self._hours(alert.value, language),
            limit=self._hours(alert.threshold, language),
        )

    def _hours(self, value: Decimal | None, language: Language) -> str:
        if language == "ja" and value is not None:
            return number(value, language)
        return str(value)  # as Chinese and English cards were

    def card(self, alert: AlertRow, language: Language, *, for_channel: bool = False) -> Reply:
        """The alert as a card: person, number, target and reason; buttons while it is open."""
        t = texts(language)
        name, metric = self._subject(alert, language), self._metric(alert, language)
        state = t(f"alerts.state.{alert.state}")
        headline = t("alerts.card.headline", id=alert.id, name=name, metric=metric)
        show_value = not for_channel or self.organisation.settings.ranking_for_members == "values"
        reason = self.reason(alert, language)
        fields = [KeyValue(t("alerts.field.who"), name), KeyValue(t("alerts.field.metric"), metric)]
        if show_value:
            now = self._amount(alert, alert.value, language)
            fields.append(KeyValue(t("alerts.field.now"), now))
            if alert.target is not None:
                target = self._amount(alert, alert.target, language)
                fields.append(KeyValue(t("alerts.field.target"), target))
            fields.append(KeyValue(t("alerts.field.reason"), reason))
        fields.append(KeyValue(t("alerts.field.state"), state))
        if alert.notified > 1:
            fields.append(KeyValue(t("alerts.field.reminders"), str(alert.notified - 1)))
        status = self._status_line(alert, language)
        if status:
            fields.append(KeyValue(t("alerts.field.handled"), status))
        lines = [headline, *(f"{f.label}: {f.value}" for f in fields)]
        buttons: tuple[Button, ...] = ()
        if alert.state in ("firing", "snoozed", "acknowledged"):
            ref = f"{alert.id}:{alert.version}"
            buttons = (
                Button(t("alerts.button.ack"), ACK, ref, "primary"),
                Button(t("alerts.button.snooze_1h"), SNOOZE, f"{ref}:1h"),
                Button(t("alerts.button.snooze_tomorrow"), SNOOZE_TOMORROW, ref),
                Button(t("alerts.button.false_alarm"), FALSE_ALARM, ref, "danger"),
                Button(
                    t("alerts.button.breakdown"), ASK, self._breakdown_question(alert, language)
                ),
            )
            daily = len(alert.period_key) == 10  # an ISO day: the appeal names it as it is
            if alert.subject.kind == "person" and alert.reason != "stale" and daily:
                # The person may dispute the number itself (bot/appeals.py).
                buttons += (
                    Button(
                        t("alerts.button.appeal"),
                        "appeal.start",
                        f"{alert.metric}|{alert.period_key}",
                    ),
                )
            # 📊 opens the clicker's own dashboard (a private link under their permissions).
            buttons += (Button(t("alerts.button.dashboard"), "dashboard.open", ""),)
            lines.append(t("alerts.card.reply_hint", id=alert.id))
        settled = t("alerts.card.provisional" if alert.provisional else "alerts.card.settled")
        context = t(
            "alerts.card.context", period=alert.period_key, settled=settled, level=alert.level
        )
        return Reply(
            "\n".join(lines),
            language,
            headline=headline,
            fields=tuple(fields),
            buttons=buttons,
            context=context,
        )

    def _breakdown_question(self, alert: AlertRow, language: Language) -> str:
        """The question the breakdown button asks, in the reader's language."""
        scope = alert.subject
        who = ""
        if scope.kind == "person" and scope.id in self.organisation.people:
            who = self.organisation.people[scope.id].name + " "
        return texts(language)(
            "alerts.breakdown_question", who=who, period=alert.period_key, metric=alert.metric
        )

    def _status_line(self, alert: AlertRow, language: Language) -> str:
        t = texts(language)
        org = self.organisation
        tz = self._timezone(alert)

        def who(pid: str | None) -> str:
            return org.people[pid].name if pid and pid in org.people else (pid or "")

        def clock(at: int) -> str:
            if language == "ja":
                return moment(at, tz, language)
            return datetime.fromtimestamp(at, zone(tz)).strftime("%m-%d %H:%M")

        if alert.state == "acknowledged" and alert.acked_at:
            return t(
                "alerts.status.acknowledged", who=who(alert.acked_by), at=clock(alert.acked_at)
            )
        if alert.state == "snoozed" and alert.snoozed_until:
            return t("alerts.status.snoozed", at=clock(alert.snoozed_until))
        if alert.state == "resolved" and alert.resolved_at:
            by = (
                t("alerts.status.automatically")
                if alert.resolved_by == "kpibot"
                else who(alert.resolved_by)
            )
            key = "alerts.status.false_alarm" if alert.false_alarm else "alerts.status.resolved"
            return t(key, by=by, at=clock(alert.resolved_at))
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

    def remind(self, alert: AlertRow, rule: AlertRuleConfig) -> int:
        """A short reminder to each person the alert's card went to (not the channels, whose
        card was updated): the alert is still open, its card is above."""
        posted = 0
        for target, language, channel in self._targets(alert, rule):
            if channel or not target.user:
                continue
            reminder = texts(language)(
                "alerts.reminder",
                id=alert.id,
                name=self._subject(alert, language),
                metric=self._metric(alert, language),
            )
            key = f"alert:{alert.id}:remind:{alert.notified}:{target.platform}:{target.user}"
            if self.notifier.post(Reply(reminder, language), target, key=key, kind="alert"):
                posted += 1
        return posted

    def edits(self, alert_id: int) -> list[Edit]:
        """Edits bringing every card of the alert to its current state (through the outbox,
        where the platform can edit messages)."""
        alert = self.store.get(alert_id)
        if alert is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_OUTBOX.c.key, _OUTBOX.c.platform, _OUTBOX.c.channel, _OUTBOX.c.user)
                .join(_POSTS, _POSTS.c.outbox_key == _OUTBOX.c.key)
                .where(_POSTS.c.alert_id == alert_id, _OUTBOX.c.kind == "alert")
            ).all()
        found = []
        for key, platform, channel, user in rows:
            language, for_channel = self._reader(platform, channel, user)
            card = self.card(alert, language, for_channel=for_channel)
            found.append(Edit(key, card, key=f"{key}:edit:v{alert.version}:n{alert.notified}"))
        return found

    def refresh(self, alert_id: int) -> int:
        """Update every card of the alert to its current state; how many edits were stored."""
        return self.notifier.apply(self.edits(alert_id))

    def _reader(self, platform: str, channel: str, user: str | None) -> tuple[Language, bool]:
        """Who reads a posted card: a person in their language, or a team's channel in the
        team's (as the card was posted)."""
        org = self.organisation
        if user:
            person = org.person_by_chat_id(platform, user)
            if person is not None:
                return self._language(person), False
        team = None if user else self.access.team_of_channel(platform, channel)
        if team is not None:
            return org.teams[team].language, True
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
            # The escalation clock starts when the owner was first told: hours held back by
            # quiet hours give nobody a chance to act, so they do not count.
            told = self.store.first_notified_at(alert.id) or alert.opened_at
            if rule.escalate_after_minutes and now - told >= rule.escalate_after_minutes * 60 * (
                alert.level + 1
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
                # A repeat updates the cards already posted and tells their owners again with
                # a short message that points to the card (an edit alone notifies nobody);
                # where no card can be updated, the card is posted again.
                self.store.notified(alert, now, ["(cards updated)"])
                current = self.store.get(alert.id)
                assert current is not None
                if self.refresh(alert.id):
                    notices += self.remind(current, rule)
                else:
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
        t = texts(language)
        alert = self.store.get(alert_id) if 0 < alert_id < 2**31 else None
        if alert is None or not self.may_act(person, alert):
            # The same answer for an alert that does not exist and one the person may not
            # act on: the refusal reveals nothing. A refusal is audited once per person.
            if alert is not None:
                self.store.refused(alert_id, person.id, verb, now)
            return Outcome(False, None, Reply(t("alerts.refused", id=alert_id), language))
        until = None
        if verb == "snooze":
            until = snooze_until(now, _snooze_length(snooze or "1h"), self._timezone(alert))
            if until is None:
                return Outcome(False, alert, Reply(t("alerts.snooze_how_long"), language))
        acted = self.store.act(
            alert_id, verb, person.id, now, version=version, until=until, note=note
        )
        if not acted.ok:
            current = acted.alert or alert
            state = t(f"alerts.state.{current.state}")
            return Outcome(
                False, current, Reply(t("alerts.out_of_date", id=alert_id, state=state), language)
            )
        assert acted.alert is not None
        status = self._status_line(acted.alert, language)
        text = t(f"alerts.done.{verb}", id=alert_id, status=status)
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
        t = texts(language)
        mine = [a for a in self.store.open_alerts(self.rules) if self.may_act(person, a)]
        if not mine:
            return Reply(t("alerts.summary.none"), language)
        lines = [
            f"#{a.id} {self._subject(a, language)} {self._metric(a, language)} · "
            f"{t(f'alerts.state.{a.state}')} · {self.reason(a, language)}"
            for a in mine
        ]
        headline = t("alerts.summary.headline", count=len(mine))
        return Reply(
            "\n".join([headline, *lines]),
            language,
            headline=headline,
            fields=tuple(
                KeyValue(f"#{a.id}", line.split(" ", 1)[1])
                for a, line in zip(mine, lines, strict=True)
            ),
        )
