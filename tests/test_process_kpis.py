"""Process KPIs from live sessions (issue 22): hours on air (all, and effective: the lives of
at least the configured length), comments, likes, shares, new followers and the interaction
rate, per streamer, shop and team, from the rollups and the raw rows alike, with targets and
scores; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from kpi_engine.figures import Figures
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from kpi_engine.organisation import Organisation
from kpi_engine.periods import day_of
from kpi_engine.plans import Target
from kpi_engine.scopes import Scope
from kpi_engine.targets import Plans
from tests.fakechat import Dialog

SHANGHAI = "Asia/Shanghai"
DAY = date(2026, 11, 20)
NOW = int(datetime(2026, 11, 21, 15, tzinfo=ZoneInfo(SHANGHAI)).timestamp())
PROCESS = [
    "live_seconds",
    "effective_live_seconds",
    "comments",
    "likes",
    "live_shares",
    "new_followers",
    "interaction_rate",
]
LIVES = [
    # L1: co-hosted, two hours; L2: li.na alone, an hour and a half (both in London's day).
    {"session_id": "L1", "hosts": "li.na,zhang.wei", "start_time": "2026-11-20 04:00:00",
     "end_time": "2026-11-20 06:00:00", "viewers": "600", "comments": "300", "likes": "900",
     "new_followers": "40", "shares": "60"},
    {"session_id": "L2", "hosts": "li.na", "start_time": "2026-11-20 08:00:00",
     "end_time": "2026-11-20 09:30:00", "viewers": "400", "comments": "100", "likes": "200",
     "new_followers": "10", "shares": "20"},
]  # fmt: skip


def _load(
    engine: Engine, organisation: Organisation, tmp_path: Path, lives: list[dict[str, str]] = LIVES
) -> None:
    path = tmp_path / "lives.csv"
    rows = [{"platform": "tiktok", "shop_id": "tts-gb-01", **row} for row in lives]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = import_file(engine, organisation, KINDS["live_sessions"], path, now=NOW)
    assert report.ok, report.render()


@pytest.mark.parametrize("credit", ["full", "split"])
def test_process_kpis_per_streamer_shop_and_team(
    engine: Engine, organisation: Organisation, tmp_path: Path, credit: str
) -> None:
    attribution = organisation.settings.attribution.model_copy(update={"cohost_credit": credit})
    org = replace(
        organisation, settings=organisation.settings.model_copy(update={"attribution": attribution})
    )
    _load(engine, org, tmp_path)
    day = day_of(DAY, SHANGHAI)
    li, zhang = Scope("person", "li.na"), Scope("person", "zhang.wei")
    shop, team = Scope("shop", "tts-gb-01"), Scope("team", "sz-live")
    half = Decimal(1) if credit == "full" else Decimal("0.5")  # each co-host's part of L1
    for figures in (Figures(engine, org), Figures(engine, org, rollups=False)):
        found = figures.figures_of(PROCESS, [li, zhang, team], day, now=NOW)
        mine = {k: f.value for k, f in found[li].items()}
        rate = mine.pop("interaction_rate")
        assert mine == {
            "live_seconds": 7200 * half + 5400,
            "effective_live_seconds": 7200 * half + 5400,  # both lives last over 30 minutes
            "comments": 300 * half + 100,
            "likes": 900 * half + 200,
            "live_shares": 60 * half + 20,
            "new_followers": 40 * half + 10,
        }
        # Comments, likes and shares per viewer: 1.58 in full, 950 ÷ 700 split.
        expected = (1260 * half + 320) / (600 * half + 400)
        assert rate is not None and abs(rate - expected) < Decimal("1e-20")
        assert found[zhang]["live_seconds"].value == 7200 * half
        assert found[zhang]["interaction_rate"].value == Decimal("2.1")  # 1,260 ÷ 600 either way
        assert found[team]["new_followers"].value == 50
        assert found[team]["interaction_rate"].value == Decimal("1.58")  # 1,580 ÷ 1,000
        in_shop = figures.figures_of(PROCESS, [shop], day_of(DAY, "Europe/London"), now=NOW)
        assert in_shop[shop]["live_seconds"].value == 12600
        assert found[li]["live_seconds"].unit == "seconds"
        assert found[li]["interaction_rate"].unit == "ratio"


def test_process_kpis_have_targets_and_are_asked_in_chat(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    _load(engine, organisation, tmp_path)
    plan = organisation.plans[0].id
    day = day_of(DAY, SHANGHAI)
    org = replace(
        organisation,
        targets=(
            *organisation.targets,
            Target(plan, "new_followers", Scope("person", "li.na"), day, Decimal(100)),
            Target(plan, "live_seconds", Scope("person", "li.na"), day, Decimal(14400)),
        ),
    )
    figures = Figures(engine, org)
    plans = Plans(org.plans, org.targets, org.catalogue)
    followers = figures.figure("new_followers", Scope("person", "li.na"), day, now=NOW)
    assert plans.progress(followers, NOW).achievement == Decimal("0.5")
    hours = figures.figure("live_seconds", Scope("person", "li.na"), day, now=NOW)
    assert plans.progress(hours, NOW).achievement == Decimal(12600) / Decimal(14400)
    dialog = Dialog(engine, org, NOW)
    for text, metric in [
        ("昨天我的涨粉", "new_followers"),
        ("昨天互动率", "interaction_rate"),
        ("my live hours yesterday", "live_seconds"),
        ("昨日の新規フォロワー", "new_followers"),
        ("昨天我的分享数", "live_shares"),
        ("昨日の有効配信時間", "effective_live_seconds"),
        ("my effective live hours yesterday", "effective_live_seconds"),
    ]:
        routed = dialog.routed("li.na", text)
        assert routed.request is not None and routed.request.metric == metric, text


# L3: a 20-minute try-out; with the default 30 minutes it is not effective live time.
SHORT = {"session_id": "L3", "hosts": "li.na", "start_time": "2026-11-20 11:00:00",
         "end_time": "2026-11-20 11:20:00", "viewers": "100", "comments": "5", "likes": "5",
         "new_followers": "1", "shares": "0"}  # fmt: skip


@pytest.mark.parametrize(
    ("minutes", "effective"),
    [
        (None, 7200 + 5400),  # the default, 30: L1 (2 h) and L2 (1.5 h), not L3 (20 min)
        (15, 7200 + 5400 + 1200),  # L3 counts too
        (120, 7200),  # from two hours: L1 exactly, not L2
    ],
)
def test_effective_live_duration_counts_lives_of_the_configured_length(
    engine: Engine, organisation: Organisation, tmp_path: Path, minutes: int | None, effective: int
) -> None:
    org = organisation
    if minutes is not None:
        settings = org.settings.model_copy(update={"effective_live_minutes": minutes})
        org = replace(org, settings=settings)
    assert org.settings.effective_live_minutes == (minutes or 30)
    _load(engine, org, tmp_path, [*LIVES, SHORT])
    day = day_of(DAY, SHANGHAI)
    li, shop = Scope("person", "li.na"), Scope("shop", "tts-gb-01")
    london = day_of(DAY, "Europe/London")
    for figures in (Figures(engine, org), Figures(engine, org, rollups=False)):
        mine = figures.figures_of(["live_seconds", "effective_live_seconds"], [li], day, now=NOW)
        assert mine[li]["live_seconds"].value == 7200 + 5400 + 1200  # all time on air
        assert mine[li]["effective_live_seconds"].value == effective
        in_shop = figures.figure("effective_live_seconds", shop, london, now=NOW)
        assert in_shop.value == effective
    # Changing the setting rebuilds the stored rollups (it is part of their fingerprint).
    shorter = org.settings.model_copy(update={"effective_live_minutes": 10})
    again = Figures(engine, replace(org, settings=shorter)).figure(
        "effective_live_seconds", li, day, now=NOW
    )
    assert again.value == 7200 + 5400 + 1200
    # Asked for by its name in chat.
    routed = Dialog(engine, org, NOW).routed("li.na", "昨天我的有效直播时长")
    assert routed.request is not None and routed.request.metric == "effective_live_seconds"
