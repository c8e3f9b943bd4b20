"""The admin commands of scheduling and delivery: digest --dry-run, schedule, outbox."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.chat.adapter import TargetNotFound
from bot.chat.messages import Reply, Sent, Target
from bot.cli import app
from bot.outbox import Outbox, Sender
from kpi_engine.annotations import add_note
from kpi_engine.demo_data import FILE_KINDS, generate
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))


def test_digest_dry_run_renders_the_morning_digest_and_its_chart(
    env: None, engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    data = generate(organisation, EXAMPLE_CONFIG, tmp_path, days=8, end=date(2026, 11, 12), seed=3)
    for label, path in data.files.items():
        assert import_file(engine, organisation, KINDS[FILE_KINDS.get(label, label)], path).ok
    add_note(engine, "team:sz-live", date(2026, 11, 11), "双11大促", "wang.fang", now=0)
    chart = tmp_path / "chart.png"
    result = runner.invoke(
        app,
        [
            "digest",
            "--team",
            "sz-live",
            "--at",
            "2026-11-12T09:00",
            "--dry-run",
            "--chart",
            str(chart),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "→ 深圳直播组 channel" in result.output
    assert "深圳直播组 · 早报（11-11 数据）" in result.output and "本月进度" in result.output
    assert "→ 李娜 (private)" in result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert any(line.startswith("备注") and line.endswith("11-11 双11大促") for line in lines)
    assert any(line.startswith("GMV 为什么变了") and "主要原因" in line for line in lines)
    assert chart.read_bytes().startswith(b"\x89PNG")
    evening = runner.invoke(
        app,
        ["digest", "--team", "la-ops", "--kind", "weekly", "--at", "2026-11-16T09:30", "--dry-run"],
    )
    assert evening.exit_code == 0, evening.output
    assert "LA Operations · weekly report 2026-W46" in evening.output
    assert "Top shops" in evening.output and "1. " in evening.output
    # Nothing was stored to send.
    assert Outbox(engine).counts() == {}


def test_digest_refuses_what_it_cannot_do(env: None) -> None:
    unknown = runner.invoke(app, ["digest", "--team", "nope", "--dry-run"])
    assert (
        unknown.exit_code == 2 and "Unknown team 'nope'; teams: sz-live, la-ops" in unknown.output
    )
    sending = runner.invoke(app, ["digest", "--team", "sz-live"])
    assert sending.exit_code == 2 and "use --dry-run" in sending.output
    bad_time = runner.invoke(app, ["digest", "--team", "sz-live", "--at", "9am", "--dry-run"])
    assert bad_time.exit_code == 2 and "--now '9am' is not a time" in bad_time.output


def test_schedule_list_shows_local_times(env: None) -> None:
    result = runner.invoke(app, ["schedule", "list", "--count", "1"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert " 09:0" in lines["morning:sz-live"] and lines["morning:sz-live"].endswith("CST")
    assert " 22:3" in lines["evening:la-ops"] and lines["evening:la-ops"].endswith(("PST", "PDT"))
    assert lines["weekly:sz-live"].split()[1] == "Mon"
    assert "freshness" in lines and "restatements" in lines


class Gone:
    platform = "feishu"
    private_in_place = False

    def render(self, reply: Reply, target: Target) -> object:
        return reply.text

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        raise TargetNotFound(f"chat {target.channel} not found")

    def update(self, sent: Sent, reply: Reply) -> Sent:
        return sent


def test_outbox_lists_retries_and_drops(env: None, engine: Engine) -> None:
    outbox = Outbox(engine)
    dead = outbox.put(Reply("早报", "zh"), Target("feishu", "", "oc_gone"), key="d1", kind="digest")
    waiting = outbox.put(Reply("hi", "en"), Target("feishu", "", "oc_x"), key="w1", due_at=4e9)
    assert dead is not None and waiting is not None
    Sender(outbox, {"feishu": Gone()}).run_once()
    listing = runner.invoke(app, ["outbox"])
    assert listing.exit_code == 0, listing.output
    assert listing.output.splitlines()[0] == "pending 1  sending 0  sent 0  dead 1  dropped 0"
    assert f"#{dead:<6} dead     digest   feishu:oc_gone  tries 1  早报" in listing.output
    assert "TargetNotFound: chat oc_gone not found" in listing.output
    retried = runner.invoke(app, ["outbox", "retry", str(dead)])
    assert retried.exit_code == 0 and f"Outbox #{dead} will be sent again" in retried.output
    assert outbox.counts() == {"pending": 2}
    assert runner.invoke(app, ["outbox", "drop", str(waiting)]).exit_code == 0
    assert runner.invoke(app, ["outbox", "drop", str(waiting)]).exit_code == 1
    bad = runner.invoke(app, ["outbox", "--show", "lost"])
    assert bad.exit_code == 2
