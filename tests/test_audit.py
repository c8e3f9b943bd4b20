"""`kpibot audit`: the trails of appeals, corrections, alerts and deliveries read as one, with
filters by kind, person, id and time, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.chat.adapter import TargetNotFound
from bot.chat.messages import Reply, Sent, Target
from bot.cli import app
from bot.features.appeals.service import ACCEPT
from bot.outbox import Outbox, Sender
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG
from tests.test_alerts import END, LINA, NOW
from tests.test_appeals import WANG, AppealBot
from tests.workspaces import load_demo

runner = CliRunner()


@pytest.fixture
def loaded(
    engine: Engine,
    organisation: Organisation,
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Engine:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    return load_demo(engine, organisation, tmp_path, days=10, end=END, seed=21)


def test_every_step_of_an_appeal_and_its_correction_is_in_the_audit(
    loaded: Engine, organisation: Organisation
) -> None:
    bot = AppealBot(loaded, organisation)
    bot.say(LINA, "申诉 11月10日GMV 应该是12000 漏算了两单")
    bot.say(LINA, "appeal gmv 2026-11-09 9000")
    appeal = bot.appeals.store.get(1)
    assert appeal is not None
    bot.clock.now += 600
    bot.click(WANG, ACCEPT, f"{appeal.id}:{appeal.version}")

    shown = runner.invoke(app, ["audit", "--kind", "appeal", "--id", "1"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.strip().splitlines()
    assert len(lines) == 2  # appeal #2 is not shown
    assert "appeal #1" in lines[0] and "opened" in lines[0] and "by li.na" in lines[0]
    assert "gmv person:li.na 2026-11-10" in lines[0]
    assert "accepted" in lines[1] and "by wang.fang (li.na)" in lines[1]
    assert lines[0].startswith("2026-11-12 15:00:00") and lines[1].startswith("2026-11-12 15:10")

    data = json.loads(runner.invoke(app, ["audit", "--kind", "correction", "--json"]).output)
    assert [(e["kind"], e["actor"], e["person"]) for e in data] == [
        ("correction", "wang.fang", "li.na")
    ]
    assert "(appeal #1)" in data[0]["detail"]

    # By person: wang.fang acted once; by time: only what happened from 15:05 on.
    theirs = json.loads(runner.invoke(app, ["audit", "--person", "wang.fang", "--json"]).output)
    assert {(e["kind"], e["action"]) for e in theirs} == {
        ("appeal", "accepted"),
        ("correction", "corrected"),
    }
    later = json.loads(
        runner.invoke(
            app, ["audit", "--kind", "appeal,correction", "--since", "2026-11-12T15:05", "--json"]
        ).output
    )
    assert [e["action"] for e in later] == ["accepted", "corrected"]
    assert runner.invoke(app, ["audit", "--kind", "appeals"]).exit_code == 2


class _Gone:
    platform, private_in_place = "slack", True

    def render(self, reply: Reply, target: Target) -> object:
        return reply

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        raise TargetNotFound("channel_not_found")

    def update(self, sent: Sent, reply: Reply) -> Sent:
        raise TargetNotFound("channel_not_found")


def test_a_dead_letter_and_an_admins_retry_are_audited(loaded: Engine) -> None:
    outbox = Outbox(loaded, clock=lambda: float(NOW))
    sender = Sender(outbox, {"slack": _Gone()}, limits={})
    stored = outbox.put(Reply("hi", "en"), Target("slack", "T1", "C404"), key="k1", kind="notice")
    assert stored is not None
    sender.deliver_now(stored)
    assert runner.invoke(app, ["outbox", "retry", str(stored)]).exit_code == 0
    data = json.loads(runner.invoke(app, ["audit", "--kind", "outbox", "--json"]).output)
    assert [(e["action"], e["actor"]) for e in data] == [
        ("queued", "kpibot"),
        ("dead", "kpibot"),
        ("retried", "cli"),
    ]
    assert "channel_not_found" in data[1]["detail"]
