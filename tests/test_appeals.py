"""Appeals: opened in chat with a snapshot, reviewed in a thread with the reviewer mentioned,
decided by buttons or text, corrections applied to the figures, SLA reminders."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bot.chat.messages import Action
from bot.features.appeals.service import ACCEPT, REJECT, START, WITHDRAW, AppealService
from kpi_engine.figures import Figures
from kpi_engine.models import Correction
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of
from kpi_engine.scopes import Scope
from tests.test_alerts import END, GROUP, LINA, NOW, Bot
from tests.workspaces import load_demo

DAY = date(2026, 11, 10)
WANG = "U07WANGFANG"
CHEN = "U07CHENHAO"


@pytest.fixture
def loaded(engine: Engine, organisation: Organisation, tmp_path: Path) -> Engine:
    return load_demo(engine, organisation, tmp_path, days=10, end=END, seed=21)


class AppealBot(Bot):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.appeals: AppealService = self.bot.service("appeals")


def gmv(engine: Engine, organisation: Organisation, scope: Scope) -> Decimal:
    figure = Figures(engine, organisation).figure(
        "gmv", scope, day_of(DAY, "Asia/Shanghai"), now=NOW
    )
    assert figure.value is not None
    return figure.value


@pytest.mark.parametrize(
    ("text", "claimed", "evidence"),
    [
        (
            "申诉 昨天GMV 应该是12000 订单 5791234,5791240",
            "12000",
            ["order 5791234", "order 5791240"],
        ),
        ("appeal gmv 2026-11-20 12000", "12000", []),
        (
            "appeal gmv 11月20日 应为 ¥12,000.50 https://seller.example/o/1",
            "12000.50",
            ["https://seller.example/o/1"],
        ),
        ("申诉 昨天GMV不对", None, []),
    ],
)
def test_the_claim_and_its_evidence_are_read_from_the_text(
    loaded: Engine, organisation: Organisation, text: str, claimed: str | None, evidence: list[str]
) -> None:
    bot = AppealBot(loaded, organisation)
    asker = organisation.people["li.na"]
    request = bot.router.parse(text, asker, "slack", NOW)
    assert request.intent == "appeal"
    assert request.amount == (Decimal(claimed) if claimed else None)
    assert list(request.evidence) == evidence


def test_an_appeal_is_reviewed_in_a_thread_and_accepting_it_corrects_the_figures(
    loaded: Engine, organisation: Organisation
) -> None:
    bot = AppealBot(loaded, organisation)
    reported = gmv(loaded, organisation, Scope("person", "li.na"))
    team_before = gmv(loaded, organisation, Scope("team", "sz-live"))
    claimed = (reported + Decimal("1234.56")).quantize(Decimal("0.01"))
    answer = bot.say(LINA, f"申诉 11月10日GMV 应该是{claimed} 订单 5791234,5791240 漏算了两单")
    assert "已提交申诉 #" in answer.text and "王芳" in answer.text
    [card] = [(r, t) for r, t in bot.chat.sent if t.channel == GROUP]
    assert [m.user for m in card[0].mentions] == [WANG] and "5791234" in card[0].text
    [appeal] = [bot.appeals.store.get(1)]
    assert appeal is not None and appeal.reported_value == reported
    assert bot.outbox.sent_message("appeal:1:root") is not None  # the thread's first message
    assert appeal.reviewer == "wang.fang" and appeal.evidence == ("order 5791234", "order 5791240")

    # The reviewer accepts it from the card.
    before = len(bot.chat.sent)
    reply = bot.click(WANG, ACCEPT, f"{appeal.id}:{appeal.version}")
    assert reply is not None and "已接受" in reply.text
    after = bot.chat.sent[before:]
    root = bot.outbox.sent_message("appeal:1:root")
    assert root is not None
    in_thread = [r for r, t in after if t.thread == root.message_id]
    assert in_thread and "已接受" in in_thread[0].text
    assert any(t.user == LINA and "已更正" in r.text for r, t in after)
    # The figure is corrected, for her and for her team, by exactly the difference.
    assert gmv(loaded, organisation, Scope("person", "li.na")) == claimed
    assert gmv(loaded, organisation, Scope("team", "sz-live")) == team_before + (claimed - reported)
    with loaded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Correction)).scalar_one() == 1
    assert [k for k, _, _ in bot.appeals.store.events(appeal.id)] == ["opened", "accepted"]
    # The card is out of date now: a reject from it changes nothing.
    stale = bot.click(WANG, REJECT, f"{appeal.id}:{appeal.version}")
    assert stale is not None and "过期" in stale.text


def test_a_rejection_needs_a_reason_that_goes_to_the_appellant(
    loaded: Engine, organisation: Organisation
) -> None:
    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "appeal gmv 2026-11-10 99999")
    assert "reason" in bot.say(WANG, "reject 1").text
    assert bot.appeals.store.get(1).state == "open"  # type: ignore[union-attr]
    # Someone who is not the reviewer (nor above them) is refused.
    other = organisation.people["zhang.wei"].chat.slack
    refusal = bot.say(other, "accept 1").text  # type: ignore[arg-type]
    assert other and refusal == "There is no appeal #1 that you may act on."
    # The same answer as for an appeal that does not exist: the refusal reveals nothing.
    assert bot.say(other, "accept 9999").text == "There is no appeal #9999 that you may act on."
    before = len(bot.chat.sent)
    assert "已驳回" in bot.say(WANG, "驳回 1 两单已退款，不计入").text
    told = [r for r, t in bot.chat.sent[before:] if t.user == LINA]
    assert told and "两单已退款" in told[0].text and told[0].language == "zh"
    with loaded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Correction)).scalar_one() == 0


def test_only_the_appellant_withdraws_and_a_dispute_button_explains_how_to_appeal(
    loaded: Engine, organisation: Organisation
) -> None:
    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "申诉 11月10日GMV 应该是12000")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None
    refused = bot.click(WANG, WITHDRAW, f"{appeal.id}:{appeal.version}")
    assert refused is not None and refused.text == "没有你可以处理的申诉 #1。"
    assert "已撤回" in bot.say(LINA, "撤回 1").text
    hint = bot.click(LINA, START, "gmv|2026-11-10")
    assert hint is not None and "申诉 2026-11-10 gmv 应该是" in hint.text
    # "Dispute" sits on a streamer's progress answer.
    progress = bot.say(LINA, "今天GMV多少")
    assert START in [b.action for b in progress.buttons]


def test_an_overdue_appeal_reminds_the_reviewer_and_their_manager_once(
    loaded: Engine, organisation: Organisation
) -> None:
    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "申诉 11月10日GMV 应该是12000")
    assert bot.appeals.check(bot.clock.now + 3600) == "0 appeals reminded"
    later = bot.clock.now + 25 * 3600
    before = len(bot.chat.sent)
    assert bot.appeals.check(later) == "1 appeals reminded"
    bot.sender.drain()
    told = {t.user for _, t in bot.chat.sent[before:]}
    assert told == {WANG, CHEN}
    assert bot.appeals.check(later + 3600) == "0 appeals reminded"
    kinds = [k for k, _, _ in bot.appeals.store.events(1)]
    assert kinds == ["opened", "reminded"]


def test_a_dispute_click_is_processed_once(loaded: Engine, organisation: Organisation) -> None:
    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "申诉 11月10日GMV 应该是12000")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None
    click = Action(
        "slack",
        "T0001",
        ACCEPT,
        f"{appeal.id}:{appeal.version}",
        WANG,
        GROUP,
        "1",
        "dup-1",
        bot.clock.now,
    )
    assert bot.pipeline.accept_action(click) is True
    assert bot.pipeline.accept_action(click) is False
    assert [k for k, _, _ in bot.appeals.store.events(1)] == ["opened", "accepted"]


def test_the_reviewer_is_told_once_when_the_data_passes_an_accepted_claim(
    loaded: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    import csv

    from kpi_engine.ingest.formats import KINDS
    from kpi_engine.ingest.importer import import_file

    bot = AppealBot(loaded, organisation)
    reported = gmv(loaded, organisation, Scope("person", "li.na"))
    claimed = (reported + 100).quantize(Decimal("0.01"))
    bot.say(LINA, f"申诉 11月10日GMV 应该是{claimed} 漏了一单")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None
    bot.click(WANG, ACCEPT, f"{appeal.id}:{appeal.version}")
    assert gmv(loaded, organisation, Scope("person", "li.na")) == claimed
    assert bot.appeals.check(bot.clock.now) == "0 appeals reminded"
    # The missing order arrives, and more: the data now says more than was accepted.
    late = tmp_path / "late.csv"
    row = {
        "order_id": "LATE1",
        "platform": "tiktok",
        "shop_id": "tts-gb-01",
        "status": "COMPLETED",
        "currency": "GBP",
        "create_time": "2026-11-10 05:00:00",
        "paid_time": "2026-11-10 05:00:10",
        "update_time": "2026-11-10 05:00:10",
        "sub_total": "500.00",
        "total_amount": "500.00",
        "attributed_to": "li.na",
    }
    with late.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    assert import_file(loaded, organisation, KINDS["orders"], late).ok
    now_value = gmv(loaded, organisation, Scope("person", "li.na"))
    assert now_value > claimed  # the data's own figure, the correction adds nothing now
    before = len(bot.chat.sent)
    assert bot.appeals.check(bot.clock.now) == "0 appeals reminded, 1 diverged corrections shown"
    bot.sender.drain()
    [(told, where)] = bot.chat.sent[before:]
    root = bot.outbox.sent_message(f"appeal:{appeal.id}:root")
    assert root is not None and where.thread == root.message_id
    assert [m.user for m in told.mentions] == [WANG]
    assert f"申诉 #{appeal.id}" in told.text and "已超过接受的" in told.text
    assert bot.appeals.check(bot.clock.now) == "0 appeals reminded"  # once
    assert [k for k, _, _ in bot.appeals.store.events(appeal.id)] == [
        "opened",
        "accepted",
        "diverged",
    ]


def test_a_decision_that_fails_after_it_was_written_changes_nothing(
    loaded: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    import shutil

    from kpi_engine.organisation import load_organisation
    from tests.conftest import EXAMPLE_CONFIG

    zhang = organisation.people["zhang.wei"].chat.slack
    assert zhang is not None
    AppealBot(loaded, organisation).say(zhang, "申诉 11月10日GMV 应该是1500")
    # He leaves the company before the review: the configuration no longer knows him. The
    # acceptance is written, then telling the appellant's team fails: nothing may remain of it.
    config = tmp_path / "left"
    shutil.copytree(EXAMPLE_CONFIG, config)
    for name, line in (
        ("people.yaml", None),
        ("kpis.yaml", "entity: person:zhang.wei,"),
        ("shops.yaml", "{person: zhang.wei,"),
    ):
        path = config / name
        text = path.read_text(encoding="utf-8")
        if line is None:
            start = text.index("  - id: zhang.wei\n")
            end = text.index("  - id: chen.jing\n")
            text = text[:start] + text[end:]
        else:
            text = "".join(x for x in text.splitlines(keepends=True) if line not in x)
        path.write_text(text, encoding="utf-8")
    left = load_organisation(config)
    assert "zhang.wei" not in left.people
    bot = AppealBot(loaded, left)
    bot._events = 100  # deliveries of its own, not the first bot's again
    appeal = bot.appeals.store.get(1)
    assert appeal is not None and appeal.appellant == "zhang.wei"
    by_text = bot.say(WANG, "接受 1")
    by_click = bot.click(WANG, ACCEPT, f"{appeal.id}:{appeal.version}")
    for reply in (by_text, by_click):
        assert reply is not None and reply.text.startswith("抱歉，出了点问题")
    assert bot.appeals.store.get(1) == appeal  # still open, at the same version
    assert [k for k, _, _ in bot.appeals.store.events(1)] == ["opened"]
    with loaded.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Correction)).scalar_one() == 0


def test_a_reminder_that_cannot_be_made_leaves_its_appeal_due_and_the_others_reminded(
    loaded: Engine, organisation: Organisation, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import update

    from kpi_engine.models import Appeal

    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "申诉 11月10日GMV 应该是1500")
    bot.say(LINA, "申诉 11月9日GMV 应该是1500")
    # The first claim as an earlier version stored it, before claims were bounded: its card
    # cannot show it.
    with loaded.begin() as conn:
        conn.execute(
            update(Appeal).where(Appeal.id == 1).values(claimed_value="1" + "0" * 27)  # type: ignore[arg-type]
        )
    later = bot.clock.now + 25 * 3600
    before = len(bot.chat.sent)
    assert bot.appeals.check(later) == "1 appeals reminded"
    assert "reminding of appeal 1 failed" in caplog.text
    assert [k for k, _, _ in bot.appeals.store.events(1)] == ["opened"]  # still due
    assert [k for k, _, _ in bot.appeals.store.events(2)] == ["opened", "reminded"]
    bot.sender.drain()
    [reminder] = [r for r, t in bot.chat.sent[before:] if t.user == WANG]
    assert "#2" in reminder.text
    # Its buttons are the appeal's as it is now (reminded): accepting from it works.
    [accept] = [b for b in reminder.buttons if b.action == ACCEPT]
    reply = bot.click(WANG, ACCEPT, accept.value)
    assert reply is not None and "已接受" in reply.text


@pytest.mark.parametrize("amount", ["NaN", "1" + "0" * 27, "1E+400", "ten"])
def test_a_stored_correction_with_an_impossible_amount_poisons_no_figure(
    loaded: Engine, organisation: Organisation, amount: str
) -> None:
    from sqlalchemy import insert

    scopes = [Scope("person", "li.na"), Scope("person", "zhang.wei"), Scope("team", "sz-live")]
    scopes.append(Scope("company", ""))
    before = [gmv(loaded, organisation, scope) for scope in scopes]
    # As an earlier version (or a hand-made fix) may have stored it.
    with loaded.begin() as conn:
        conn.execute(
            insert(Correction).values(  # type: ignore[arg-type]
                appeal_id=None,
                metric="gmv",
                scope="person:li.na",
                day=DAY,
                first_day=DAY,
                timezone="Asia/Shanghai",
                delta=amount,
                claimed=amount,
                reported="100",
                currency="CNY",
                created_by="wang.fang",
                created_at=NOW,
                reason="imported by hand",
            )
        )
    assert [gmv(loaded, organisation, scope) for scope in scopes] == before
    bot = AppealBot(loaded, organisation)
    assert bot.appeals.check(NOW).startswith("0 appeals reminded")  # the SLA job goes on
