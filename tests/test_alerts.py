"""Alerts: rules against real figures, the lifecycle with its audit trail, cards and buttons,
text commands, escalation and quiet hours, with a moving clock; and concurrent actions on
PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.chat.messages import Action, InboundMessage, Reply, Target
from bot.features.alerts.service import ACK, FALSE_ALARM, SNOOZE, SNOOZE_TOMORROW, AlertService
from kpi_engine.alerts import AlertRow, AlertStore, Observation, observe
from kpi_engine.figures import Figures, format_value
from kpi_engine.organisation import (
    AlertCondition,
    AlertRuleConfig,
    Organisation,
    check_organisation,
)
from kpi_engine.periods import day_of, earlier_period
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from tests.conftest import EXAMPLE_CONFIG
from tests.fakechat import FakeChat, bot_for
from tests.workspaces import load_demo

END = date(2026, 11, 12)
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = int(datetime(2026, 11, 12, 15, tzinfo=SHANGHAI).timestamp())
LINA = "U07LINA0001"
GROUP = "C07SZLIVE01"


@dataclass
class Clock:
    now: int = NOW

    def __call__(self) -> float:
        return float(self.now)


@dataclass
class Bot:
    """The chat side with alerts, on a fake Slack, at a moving time."""

    engine: Engine
    organisation: Organisation
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.chat = FakeChat("slack", private_in_place=True)
        self.bot = bot_for(self.engine, self.organisation, {"slack": self.chat}, self.clock)
        self.outbox, self.sender = self.bot.outbox, self.bot.sender
        self.notifier, self.pipeline = self.bot.notifier, self.bot.pipeline
        self.figures, self.router = self.bot.core.figures, self.bot.router
        self.alerts: AlertService = self.bot.service("alerts")
        self._events = 0

    def run(self, minutes_later: int = 0) -> str:
        self.clock.now += minutes_later * 60
        done = self.alerts.run(self.clock.now)
        self.sender.drain()
        return done

    def posts(self) -> list[tuple[Reply, Target]]:
        return list(self.chat.sent)

    def click(self, user: str, action: str, value: str, message_id: str = "1") -> Reply | None:
        self._events += 1
        before = len(self.chat.sent)
        self.pipeline.accept_action(
            Action(
                "slack",
                "T0001",
                action,
                value,
                user,
                GROUP,
                message_id,
                f"click{self._events}",
                self.clock.now,
            )
        )
        self.sender.drain()
        sent = [r for r, t in self.chat.sent[before:] if t.private]
        return sent[-1] if sent else None

    def say(self, user: str, text: str) -> Reply:
        self._events += 1
        before = len(self.chat.sent)
        self.pipeline.accept(
            InboundMessage(
                "slack",
                "T0001",
                f"D{user}",
                user,
                text,
                f"msg{self._events}",
                self.clock.now,
                is_direct=True,
            )
        )
        self.sender.drain()
        [reply] = [r for r, t in self.chat.sent[before:] if t.channel == f"D{user}"]
        return reply


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=10, end=END, seed=21)


def lina_today(engine: Engine, organisation: Organisation) -> Decimal:
    figure = Figures(engine, organisation).figure(
        "gmv", Scope("person", "li.na"), day_of(END, "Asia/Shanghai"), now=NOW
    )
    assert figure.value is not None
    return figure.value


def rule(**changes: Any) -> AlertRuleConfig:
    values: dict[str, Any] = {
        "id": "lina-gmv",
        "metric": "gmv",
        "scope": "person:li.na",
        "period": "today",
        "condition": AlertCondition(below=Decimal(10**9)),
        "hold": 1,
        "repeat_minutes": 60,
        "max_repeats": 1,
        "escalate_after_minutes": 30,
    }
    values.update(changes)
    return AlertRuleConfig(**values)


def with_rules(organisation: Organisation, *rules: AlertRuleConfig) -> Organisation:
    return replace(organisation, alerts=rules)


# -- evaluation -----------------------------------------------------------------------------


def test_the_example_rules_observe_real_figures(loaded: Engine, organisation: Organisation) -> None:
    figures = Figures(loaded, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    [pace_rule] = [r for r in organisation.alerts if r.id == "streamer-behind-pace"]
    found = observe(pace_rule, figures, plans, organisation, NOW)
    streamers = {p.id for p in organisation.people.values() if p.role == "streamer"}
    assert {o.scope.id for o in found} == streamers
    lina = next(o for o in found if o.scope.id == "li.na")
    # An independent computation of "behind pace": actual ÷ expected-by-now under 70 %.
    progress = plans.progress(
        figures.figure("gmv", Scope("person", "li.na"), day_of(END, "Asia/Shanghai"), now=NOW), NOW
    )
    assert progress.pace is not None and progress.expected is not None
    if lina.evaluated:
        assert lina.breached == (progress.pace < Decimal("0.7"))
        assert lina.threshold == progress.expected and lina.target == progress.target


def test_a_breach_fires_after_its_hold_once_per_period_and_resolves_and_rearms(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    breached = rule(hold=2, condition=AlertCondition(below=actual + 1))
    bot = Bot(loaded, with_rules(organisation, breached))
    assert bot.run().startswith("0 opened")  # the first evaluation starts the hold
    assert bot.posts() == []
    assert bot.run(5).startswith("1 opened")
    assert bot.run(5).startswith("0 opened")  # still breached: the same alert
    [alert] = bot.alerts.store.open_alerts()
    assert alert.state == "firing" and alert.value == actual and alert.threshold == actual + 1
    # The condition clears: resolved automatically, and the card says so.
    bot.alerts.rules["lina-gmv"] = rule(condition=AlertCondition(below=actual - 1))
    assert "1 resolved" in bot.run(5)
    assert bot.alerts.store.get(alert.id).state == "resolved"  # type: ignore[union-attr]
    # Breached again in the same period: a new alert (re-armed), not the old one reopened.
    bot.alerts.rules["lina-gmv"] = rule(condition=AlertCondition(below=actual + 1))
    bot.run(5)
    [again] = bot.alerts.store.open_alerts()
    assert again.id != alert.id
    kinds = [k for k, _, _ in bot.alerts.store.events(alert.id)]
    assert kinds[0] == "fired" and kinds[-1] == "resolved"


def test_the_card_names_the_person_the_number_the_target_and_the_reason(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(loaded, with_rules(organisation, rule(condition=AlertCondition(below=actual + 100))))
    bot.run()
    sent = bot.posts()
    direct = [(r, t) for r, t in sent if t.user == LINA]
    channel = [(r, t) for r, t in sent if t.channel == GROUP]
    assert len(direct) == 1 and len(channel) == 1
    card = direct[0][0]
    money = format_value(actual, "money", "CNY")
    assert "李娜" in card.text and money in card.text and "低于" in card.text
    assert [b.action for b in card.buttons][:4] == [ACK, SNOOZE, SNOOZE_TOMORROW, FALSE_ALARM]
    # The team channel sees who and what, not her number (members see names, not values).
    group_card = channel[0][0]
    assert "李娜" in group_card.text and money not in group_card.text


def test_ack_from_the_card_updates_every_card_and_a_stale_card_changes_nothing(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(loaded, with_rules(organisation, rule(condition=AlertCondition(below=actual + 1))))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    # The button as the card carries it.
    [card] = [r for r, t in bot.posts() if t.user == LINA]
    [ack_button] = [b for b in card.buttons if b.action == ACK]
    card_value = ack_button.value
    before = len(bot.chat.sent)
    answer = bot.click(LINA, ACK, card_value)
    assert answer is not None and "已确认" in answer.text
    acked = bot.alerts.store.get(alert.id)
    assert acked is not None and acked.state == "acknowledged" and acked.acked_by == "li.na"
    updates = [r for r, t in bot.chat.sent[before:] if not t.private]
    assert len(updates) == 2 and all("已确认 by 李娜" in r.text for r in updates)
    # The same card clicked again (a snooze): out of date, nothing changes.
    stale = bot.click(LINA, SNOOZE, f"{card_value}:1h")
    assert stale is not None and "过期" in stale.text
    assert bot.alerts.store.get(alert.id).state == "acknowledged"  # type: ignore[union-attr]
    # The same click delivered twice is handled once.
    bot.pipeline.accept_action(
        Action("slack", "T0001", ACK, card_value, LINA, GROUP, "1", "click1", bot.clock.now)
    )
    assert [k for k, _, _ in bot.alerts.store.events(alert.id)].count("acknowledged") == 1


def test_only_the_owner_their_managers_and_admins_may_act(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(loaded, with_rules(organisation, rule(condition=AlertCondition(below=actual + 1))))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    colleague = organisation.people["zhang.wei"].chat.slack
    assert colleague
    refused = bot.click(colleague, ACK, f"{alert.id}:{alert.version}")
    assert refused is not None and refused.text == f"没有你可以处理的告警 #{alert.id}。"
    assert bot.alerts.store.get(alert.id).state == "firing"  # type: ignore[union-attr]
    # The same words as for an alert that does not exist (no existence oracle), and the
    # refusal is audited once however often it is tried.
    assert bot.say(colleague, "确认 9999").text == "没有你可以处理的告警 #9999。"
    bot.say(colleague, f"确认 {alert.id}")
    events = [(k, a) for k, a, _ in bot.alerts.store.events(alert.id)]
    assert events.count(("refused", "zhang.wei")) == 1
    manager = organisation.people["wang.fang"].chat.slack
    assert manager
    reply = bot.say(manager, f"确认 {alert.id} 在跟进")
    assert "已确认" in reply.text
    acked = bot.alerts.store.get(alert.id)
    assert acked is not None and acked.acked_by == "wang.fang" and acked.note == "在跟进"


def test_text_commands_snooze_wake_and_false_alarm_rate(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(loaded, with_rules(organisation, rule(condition=AlertCondition(below=actual + 1))))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    assert "已暂停" in bot.say(LINA, f"暂停 {alert.id} 2小时").text
    snoozed = bot.alerts.store.get(alert.id)
    assert snoozed is not None and snoozed.snoozed_until == bot.clock.now + 7200
    bot.run(60)
    assert bot.alerts.store.get(alert.id).state == "snoozed"  # type: ignore[union-attr]
    bot.run(61)  # the snooze ran out: firing again, and told again
    assert bot.alerts.store.get(alert.id).state == "firing"  # type: ignore[union-attr]
    english = bot.say(LINA, f"not a problem {alert.id}")
    assert english.language == "en" and "not a problem" in english.text
    assert bot.alerts.store.false_alarm_rates() == {"lina-gmv": (1, 1)}
    listing = bot.say(LINA, "告警")
    assert "没有待处理的告警" in listing.text


def test_a_shop_alert_goes_to_the_operator_assigned_to_the_shop(
    loaded: Engine, organisation: Organisation
) -> None:
    shop_rule = rule(id="gb-gmv", scope="shop:tts-gb-01")
    bot = Bot(loaded, with_rules(organisation, shop_rule))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    # zhao.lei is the operator assigned to tts-gb-01; its streamers and editor are not told.
    assert [p.id for p in bot.alerts.owners(alert)] == ["zhao.lei"]
    users = {t.user for _, t in bot.posts() if t.user}
    assert users == {organisation.people["zhao.lei"].chat.slack}
    # A shop nobody operates falls back to its team's manager.
    bare = replace(
        organisation,
        assignments=tuple(a for a in organisation.assignments if a.person != "zhao.lei"),
    )
    assert [p.id for p in Bot(loaded, bare).alerts.owners(alert)] == ["wang.fang"]


def test_a_teams_alert_goes_to_the_owner_of_its_metric(
    loaded: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    # zhao.lei (operator) owns sz-live's refund rate (named by its alias); GMV has no owner.
    team = organisation.teams["sz-live"].model_copy(update={"owners": {"return_rate": "zhao.lei"}})
    owned = replace(organisation, teams={**organisation.teams, "sz-live": team})
    refunds = rule(
        id="team-refunds",
        metric="refund_rate",
        scope="team:sz-live",
        period="this_month",
        condition=AlertCondition(above=Decimal(-1)),
    )
    gmv = rule(id="team-gmv", scope="team:sz-live")
    bot = Bot(loaded, with_rules(owned, refunds, gmv))
    bot.run()
    found = {a.rule: a for a in bot.alerts.store.open_alerts()}
    assert [p.id for p in bot.alerts.owners(found["team-refunds"])] == ["zhao.lei"]
    assert [p.id for p in bot.alerts.owners(found["team-gmv"])] == ["wang.fang"]
    told = {t.user for _, t in bot.posts() if t.user}
    assert organisation.people["zhao.lei"].chat.slack in told
    # Config check: the metric and the person must exist, and the owner be one of the team's.
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    path = config / "organisation.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    manager: wang.fang\n",
        "    manager: wang.fang\n    owners: {refund_rat: zhao.lei, gmv: nobody, aov: jessica.lee}\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    _, problems = check_organisation(config)
    said = {p.path: p.message for p in problems if p.severity == "error"}
    assert said == {
        "teams[0].owners.refund_rat": "unknown metric 'refund_rat'",
        "teams[0].owners.gmv": "unknown person 'nobody'",
        "teams[0].owners.aov": "'jessica.lee' is not in team 'sz-live'",
    }


def test_a_company_alert_goes_to_the_companys_owner_of_its_metric(
    loaded: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    # daniel.kim (an operator in la-ops) owns the company's refund rate; GMV has no owner.
    settings = organisation.settings.model_copy(update={"owners": {"refund_rate": "daniel.kim"}})
    owned = replace(organisation, settings=settings)
    refunds = rule(
        id="company-refunds",
        metric="refund_rate",
        scope="company",
        period="this_month",
        condition=AlertCondition(above=Decimal(-1)),
    )
    gmv = rule(id="company-gmv", scope="company")
    bot = Bot(loaded, with_rules(owned, refunds, gmv))
    bot.run()
    found = {a.rule: a for a in bot.alerts.store.open_alerts()}
    assert [p.id for p in bot.alerts.owners(found["company-refunds"])] == ["daniel.kim"]
    admins = [p.id for p in organisation.people.values() if p.role == "admin"]
    assert [p.id for p in bot.alerts.owners(found["company-gmv"])] == admins
    told = {t.user for _, t in bot.posts() if t.user}
    assert organisation.people["daniel.kim"].chat.slack in told
    assert bot.alerts.may_act(organisation.people["daniel.kim"], found["company-refunds"])
    # A team's alert is still its own owner's or its manager's, never the company's owner.
    team_refunds = rule(
        id="team-refunds",
        metric="refund_rate",
        scope="team:sz-live",
        period="this_month",
        condition=AlertCondition(above=Decimal(-1)),
    )
    team_bot = Bot(loaded, with_rules(owned, team_refunds))
    team_bot.run()
    [team_alert] = [a for a in team_bot.alerts.store.open_alerts() if a.rule == "team-refunds"]
    assert [p.id for p in team_bot.alerts.owners(team_alert)] == ["wang.fang"]
    # Config check: the metric and the person must exist (any team's person may own it).
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    path = config / "organisation.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "organisation:\n",
        "organisation:\n  owners: {refund_rat: daniel.kim, gmv: nobody, aov: jessica.lee}\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    _, problems = check_organisation(config)
    said = {p.path: p.message for p in problems if p.severity == "error"}
    assert said == {
        "organisation.owners.refund_rat": "unknown metric 'refund_rat'",
        "organisation.owners.gmv": "unknown person 'nobody'",
    }


def test_unacknowledged_alerts_escalate_up_the_manager_chain(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(
        loaded,
        with_rules(
            organisation, rule(condition=AlertCondition(below=actual + 1), notify=("owner",))
        ),
    )
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    manager = organisation.people["wang.fang"].chat.slack
    assert [t.user for _, t in bot.posts()] == [LINA]
    bot.run(31)
    raised = bot.alerts.store.get(alert.id)
    assert raised is not None and raised.level == 1
    # The manager gets the card; li.na's card is updated, not posted again.
    assert sorted([t.user for _, t in bot.posts()][1:], key=str) == sorted([None, manager], key=str)
    # Acknowledged: no further escalation.
    bot.click(LINA, ACK, f"{raised.id}:{raised.version}")
    bot.run(120)
    assert bot.alerts.store.get(alert.id).level == 1  # type: ignore[union-attr]


def test_quiet_hours_hold_notifications_until_they_end(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    quiet = rule(condition=AlertCondition(below=actual + 1), quiet_hours=("14:00", "16:00"))
    bot = Bot(loaded, with_rules(organisation, quiet))
    bot.run()  # 15:00 in Shanghai: opened, not told
    assert bot.alerts.store.open_alerts() and bot.posts() == []
    bot.run(61)  # 16:01
    assert len(bot.posts()) == 2


def test_quiet_hours_pause_the_escalation_clock(loaded: Engine, organisation: Organisation) -> None:
    # Opened at 15:00 in quiet hours, first told at 16:01: the 30 minutes before escalating
    # count from 16:01, not from 15:00.
    actual = lina_today(loaded, organisation)
    quiet = rule(
        condition=AlertCondition(below=actual + 1),
        quiet_hours=("14:00", "16:00"),
        notify=("owner",),
    )
    bot = Bot(loaded, with_rules(organisation, quiet))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    bot.run(61)  # 16:01: li.na is told
    assert [t.user for _, t in bot.posts()] == [LINA]
    bot.run(5)  # 16:06: an hour after it opened, five minutes after she was told
    assert bot.alerts.store.get(alert.id).level == 0  # type: ignore[union-attr]
    bot.run(26)  # 16:32
    assert bot.alerts.store.get(alert.id).level == 1  # type: ignore[union-attr]


# -- concurrency ----------------------------------------------------------------------------


def race(store: AlertStore, opened: AlertRow, clear: Observation) -> None:
    """An acknowledgement, an auto-resolve and an escalation of `opened`, at once."""
    barrier = threading.Barrier(3)

    def ack() -> None:
        barrier.wait()
        store.act(opened.id, "ack", "li.na", NOW, version=opened.version)

    def resolve() -> None:
        barrier.wait()
        store.record(clear, NOW)

    def escalate() -> None:
        barrier.wait()
        store.escalate(opened, NOW, "wang.fang")

    threads = [threading.Thread(target=f) for f in (ack, resolve, escalate)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_ack_auto_resolve_and_escalation_racing_leave_one_consistent_state(
    loaded: Engine, organisation: Organisation, backend: str
) -> None:
    store = AlertStore(loaded)
    actual = lina_today(loaded, organisation)
    breached = rule(condition=AlertCondition(below=actual + 1))
    cleared = rule(condition=AlertCondition(below=actual - 1))
    figures = Figures(loaded, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    for round_ in range(12):
        period_key = f"race-{round_}"
        [seen] = observe(breached, figures, plans, organisation, NOW)
        opened = store.record(replace(seen, period_key=period_key), NOW)[1]
        assert opened is not None
        [clear] = observe(cleared, figures, plans, organisation, NOW)
        clear_now: Observation = replace(clear, period_key=period_key)
        race(store, opened, clear_now)
        final = store.get(opened.id)
        assert final is not None
        events = [k for k, _, _ in store.events(opened.id) if k not in ("refused", "notified")]
        # Every change left exactly one event: the version counts them.
        assert final.version == len(events), events
        # Replayed in order, the trail is a valid path that ends in the stored state: an
        # escalation only of a firing alert, an acknowledgement only of an open one.
        state = "firing"
        for kind in events[1:]:
            if kind == "escalated":
                assert state == "firing", events
            elif kind == "acknowledged":
                assert state in ("firing", "snoozed"), events
                state = "acknowledged"
            else:
                assert kind == "resolved" and state != "resolved", events
                state = "resolved"
        assert final.state == state and len(events) >= 2


def test_kpibot_alerts_lists_open_alerts_and_false_alarm_rates(
    loaded: Engine, organisation: Organisation, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    actual = lina_today(loaded, organisation)
    example = rule(id="streamer-behind-pace", condition=AlertCondition(below=actual + 1))
    bot = Bot(loaded, with_rules(organisation, example))
    bot.run()
    [alert] = bot.alerts.store.open_alerts()
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    shown = CliRunner().invoke(app, ["alerts"])
    assert shown.exit_code == 0, shown.output
    assert f"#{alert.id}" in shown.output and "person:li.na" in shown.output
    bot.say(LINA, f"误报 {alert.id}")
    rates = CliRunner().invoke(app, ["alerts"]).output
    assert "0 open" in rates
    assert [
        line.split() for line in rates.splitlines() if line.startswith("streamer-behind-pace")
    ] == [["streamer-behind-pace", "1", "1", "100%"]]


def test_repeats_update_the_cards_already_posted(
    loaded: Engine, organisation: Organisation
) -> None:
    actual = lina_today(loaded, organisation)
    bot = Bot(
        loaded,
        with_rules(
            organisation,
            rule(condition=AlertCondition(below=actual + 1), escalate_after_minutes=None),
        ),
    )
    bot.run()
    posted = len(bot.posts())
    bot.run(61)  # unacknowledged after the repeat interval: the two cards are updated …
    repeated = bot.posts()[posted:]
    updates = [(r, t) for r, t in repeated if t.user is None]
    assert len(updates) == 2 and all("提醒" in r.text for r, _ in updates)
    # … and li.na, whose card an edit would not notify, is told again in a new message.
    [(reminder, to)] = [(r, t) for r, t in repeated if t.user is not None]
    [alert] = bot.alerts.store.open_alerts()
    assert (
        to.user == LINA and f"告警 #{alert.id}" in reminder.text and "上面的卡片" in reminder.text
    )
    assert alert.notified == 2
    bot.run(61)  # max_repeats 1: no more
    assert len(bot.posts()) == posted + 3


def test_a_change_against_the_previous_period_is_judged_on_the_same_numbers(
    loaded: Engine, organisation: Organisation
) -> None:
    figures = Figures(loaded, organisation)
    plans = Plans(organisation.plans, organisation.targets, organisation.catalogue)
    drop = rule(scope="role:streamer", condition=AlertCondition(change_percent=Decimal(-5)))
    found = {o.scope.id: o for o in observe(drop, figures, plans, organisation, NOW)}
    today_ = day_of(END, "Asia/Shanghai")
    before = earlier_period(today_, "previous", NOW)
    for person in ("li.na", "zhang.wei"):
        # Independently: each figure on its own, then the percentage by hand.
        now_value = figures.figure("gmv", Scope("person", person), today_, now=NOW).value
        then_value = figures.figure("gmv", Scope("person", person), before, now=NOW).value
        assert now_value is not None and then_value
        change = (now_value - then_value) / then_value * 100
        seen = found[person]
        assert seen.value == now_value and seen.threshold == then_value
        assert seen.breached == (change <= -5)
        assert seen.detail is not None and seen.detail["change"] == str(
            change.quantize(Decimal("0.1"))
        )
