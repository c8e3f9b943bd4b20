"""History is not rewritten: a closed month keeps the configuration it was judged by until an
audited re-score; configuration versions and their audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.cli import app
from bot.queries import resolve
from kpi_engine.figures import Figures
from kpi_engine.history import ConfigHistory, KpiConfig, history_of
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation, load_organisation
from kpi_engine.periods import month_of
from kpi_engine.scopes import Scope
from kpi_engine.scoring import rescore, scorecard
from tests.conftest import EXAMPLE_CONFIG

LA = "America/Los_Angeles"
NOVEMBER = month_of(date(2026, 11, 1), LA)
DECEMBER = month_of(date(2026, 12, 1), LA)
STREAMER_CARD = """scorecards:
  - role: streamer
    items:
      - {metric: gmv, weight: 60}
      - {metric: orders, weight: 40}
"""


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


NOV_20 = at(2026, 11, 20, 12)
DEC_2 = at(2026, 12, 2, 12)  # November has ended everywhere (LA: 1 December 08:00 UTC)
DEC_3 = at(2026, 12, 3, 12)


def config(tmp_path: Path, name: str, gmv_target: str) -> Organisation:
    """The example organisation, streamers scored on GMV (60) and orders (40), jessica.lee's
    monthly GMV target `gmv_target` and orders target 10."""
    directory = tmp_path / name
    shutil.copytree(EXAMPLE_CONFIG, directory)
    kpis = directory / "kpis.yaml"
    text_ = kpis.read_text(encoding="utf-8")
    text_ = text_[: text_.index("\nscorecards:") + 1] + STREAMER_CARD
    text_ = text_.replace(
        "entity: person:jessica.lee, every: month, from: 2026-07, value: 220000}",
        f"entity: person:jessica.lee, every: month, from: 2026-07, value: {gmv_target}}}\n"
        "  - {plan: 2026-h2, metric: orders, entity: person:jessica.lee, every: month,"
        " value: 10}",
    )
    kpis.write_text(text_, encoding="utf-8")
    return load_organisation(directory)


def import_orders(engine: Engine, organisation: Organisation, tmp_path: Path) -> None:
    """Three of jessica.lee's orders paid in November (LA time): 176,000.00 USD."""
    rows = [
        ("o-1", "2026-11-03 10:00:00", "100000.00"),
        ("o-2", "2026-11-12 11:00:00", "50000.00"),
        ("o-3", "2026-11-25 12:00:00", "26000.00"),
    ]
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
        "sub_total,total_amount,attributed_to\n"
        + "".join(
            f"{oid},tiktok,tts-us-01,COMPLETED,USD,{t},{t},{t},{v},{v},jessica.lee\n"
            for oid, t, v in rows
        ),
        encoding="utf-8",
    )
    assert import_file(engine, organisation, KINDS["orders"], csv).ok


def test_a_closed_month_keeps_its_configuration_until_an_audited_rescore(
    engine: Engine, tmp_path: Path
) -> None:
    before = config(tmp_path, "before", "220000")
    import_orders(engine, before, tmp_path)
    figures = Figures(engine, before)
    history = history_of(engine, before, now=NOV_20)
    card = scorecard(figures, history.current_plans, "jessica.lee", NOVEMBER, now=NOV_20)
    # GMV 176,000 of 220,000 = 0.8 → 48 points; 3 of 10 orders = 0.3 → 12 points.
    assert card is not None and card.score == 60 and not card.kept
    assert card.config_version == history.current.id

    # The admin edits the target after November has ended; the next process loads it.
    after = config(tmp_path, "after", "176000")
    figures = Figures(engine, after)
    edited = history_of(engine, after, now=DEC_2)
    assert edited.current.id != history.current.id
    card = scorecard(figures, edited.current_plans, "jessica.lee", NOVEMBER, now=DEC_2)
    assert card is not None and card.score == 60 and card.kept  # not 72: November is closed
    assert card.config_version == history.current.id
    december = scorecard(figures, edited.current_plans, "jessica.lee", DECEMBER, now=DEC_2)
    assert december is not None and december.config_version == edited.current.id
    assert not december.kept
    query = resolve(engine, after, "person:jessica.lee", "2026-11", now=DEC_2)
    progress = query.plans.progress(
        figures.figure("gmv", query.scope, query.period, now=DEC_2), DEC_2
    )
    assert progress.target == 220000  # the report shows November's target as it was

    with pytest.raises(ValueError, match="2026-12 has not ended"):
        rescore(figures, "2026-12", "emily.carter", "typo", now=DEC_3)
    with pytest.raises(ValueError, match="needs a reason"):
        rescore(figures, "2026-11", "emily.carter", " ", now=DEC_3)
    preview = rescore(figures, "2026-11", "emily.carter", "target typo", now=DEC_3, apply=False)
    assert not preview.applied
    assert preview.target_changes == ("person:jessica.lee gmv: 220000 → 176000",)
    assert preview.scores is not None
    assert preview.scores["jessica.lee"] == (
        {"score": "60.00", "bonus": "0.00", "currency": "USD"},
        {"score": "72.00", "bonus": "0.00", "currency": "USD"},  # 60 × 1 + 12
    )
    card = scorecard(figures, edited.current_plans, "jessica.lee", NOVEMBER, now=DEC_3)
    assert card is not None and card.score == 60  # a dry run changes nothing

    done = rescore(figures, "2026-11", "emily.carter", "target typo", now=DEC_3)
    assert done.applied and done.before is not None and done.before.id == history.current.id
    card = scorecard(figures, edited.current_plans, "jessica.lee", NOVEMBER, now=DEC_3)
    assert card is not None and card.score == 72 and card.kept
    assert card.config_version == edited.current.id
    again = rescore(figures, "2026-11", "emily.carter", "again", now=DEC_3)
    assert not again.applied  # already judged by the current configuration

    trail = [(e.kind, e.subject, e.actor, e.at) for e in edited.events()]
    assert trail == [
        ("config_recorded", "config", "kpibot", NOV_20),
        ("config_recorded", "config", "kpibot", DEC_2),
        ("month_closed", "month:2026-11", "kpibot", DEC_2),
        ("rescored", "month:2026-11", "emily.carter", DEC_3),
    ]
    recorded = edited.events(kind="config_recorded")[1]
    assert recorded.before == {
        "version": history.current.id,
        "fingerprint": history.current.fingerprint,
    }
    assert recorded.after["changes"]["targets_added"] == 1  # the edited target
    assert recorded.after["changes"]["targets_removed"] == 1
    [rescored] = edited.events(kind="rescored", subject="month:2026-11")
    assert rescored.reason == "target typo"
    assert rescored.before["version"] == history.current.id
    assert rescored.before["scores"]["jessica.lee"] == {
        "score": "60.00",
        "bonus": "0.00",
        "currency": "USD",
    }
    assert rescored.after["version"] == edited.current.id
    assert rescored.after["scores"]["jessica.lee"] == {
        "score": "72.00",
        "bonus": "0.00",
        "currency": "USD",
    }
    assert rescored.after["target_changes"] == ["person:jessica.lee gmv: 220000 → 176000"]


def test_a_month_closes_on_the_version_in_force_at_its_end(engine: Engine, tmp_path: Path) -> None:
    old = config(tmp_path, "old", "220000")
    new = config(tmp_path, "new", "176000")
    first = ConfigHistory(engine, old, now=NOV_20)
    second = ConfigHistory(engine, new, now=at(2026, 11, 28))  # changed before the end
    third = ConfigHistory(engine, old, now=DEC_2)  # and back, after it: a new version again
    assert len({first.current.id, second.current.id, third.current.id}) == 3
    assert first.current.fingerprint == third.current.fingerprint
    used = third.in_force(NOVEMBER, DEC_2)
    assert used.closed and used.version == second.current and used.month == "2026-11"
    line = used.plans.target_of("gmv", Scope("person", "jessica.lee"), NOVEMBER)
    assert line is not None and line.value == 176000
    # The binding is kept: a later process, with yet another version, reads the same one.
    assert ConfigHistory(engine, new, now=DEC_3).in_force(NOVEMBER, DEC_3).version == second.current
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM period_configs")).scalar_one() == 1
    # A fresh installation after the month ended has only the current version to keep.
    assert ConfigHistory(engine, old, now=DEC_3).in_force(DECEMBER, DEC_3).closed is False


def test_a_month_closed_with_no_earlier_version_keeps_the_current_one(
    engine: Engine, tmp_path: Path
) -> None:
    organisation = config(tmp_path, "c", "220000")
    history = ConfigHistory(engine, organisation, now=DEC_2)
    used = history.in_force(NOVEMBER, DEC_2)
    assert used.closed and used.version == history.current


def test_the_stored_configuration_is_exactly_the_configuration(tmp_path: Path) -> None:
    organisation = load_organisation(EXAMPLE_CONFIG)
    config_ = KpiConfig.of(organisation)
    assert config_.plans[0].live_days and config_.plans[0].events  # the rich parts too
    assert any(e.scopes for e in config_.plans[0].events)
    assert KpiConfig.from_json(config_.to_json()) == config_
    assert config_.fingerprint() == KpiConfig.of(load_organisation(EXAMPLE_CONFIG)).fingerprint()
    changed = config(tmp_path, "changed", "220001")
    assert (
        KpiConfig.of(changed).fingerprint()
        != KpiConfig.of(config(tmp_path, "same", "220000")).fingerprint()
    )
    stepped = next(t for t in organisation.targets if t.recurrence is not None)
    assert KpiConfig.from_json(KpiConfig((), (stepped,), ()).to_json()).targets == (stepped,)
    assert isinstance(KpiConfig.from_json(config_.to_json()).targets[0].value, Decimal)


def test_the_rescore_command(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    organisation = config(tmp_path, "cli", "220000")
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(tmp_path / "cli"))
    runner = CliRunner()
    refused = runner.invoke(app, ["rescore", "1999-01", "--by", "li.na", "--reason", "x"])
    assert (
        refused.exit_code == 2 and "--by must be a manager or admin, not 'li.na'" in refused.output
    )
    assert organisation.people["emily.carter"].role == "manager"
    # 1999 has ended whatever the machine's clock says.
    args = ["rescore", "1999-01", "--by", "emily.carter", "--reason", "plan fixed"]
    preview = runner.invoke(app, [*args, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "1999-01: configuration not closed yet → v1 (" in preview.output
    assert "Dry run: nothing changed." in preview.output
    done = runner.invoke(app, args)
    assert (
        done.exit_code == 0
        and "Re-scored; recorded in the configuration audit trail." in done.output
    )
    again = runner.invoke(app, args)
    assert "Already judged by the current configuration; nothing to do." in again.output
    card = runner.invoke(app, ["scorecard", "jessica.lee", "--period", "1999-01"])
    assert card.exit_code == 0, card.output
    assert "configuration v1 " in card.output and "(kept for the closed month)" in card.output
