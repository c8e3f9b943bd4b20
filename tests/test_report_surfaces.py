"""The figures' surfaces: GET /api/v1/metrics/{metric} and `kpibot report`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import app
from config.settings import Settings
from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import import_file
from tests.conftest import EXAMPLE_CONFIG, ROOT

KEY = "report-key"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(
        KPIBOT_DATABASE_URL=db_url, KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG, KPIBOT_API_KEY=KEY
    )
    with TestClient(create_app(settings)) as test_client:
        runtime = test_client.app.state.runtime  # type: ignore[attr-defined]
        for kind in KINDS.values():
            path = ROOT / "docs" / "examples" / f"{kind.name}.csv"
            assert import_file(runtime.engine, runtime.organisation, kind, path).ok
        yield test_client


def test_metric_endpoint(client: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    body = client.get(
        "/api/v1/metrics/gmv",
        params={"entity": "shop:tts-us-01", "period": "2026-11-20"},
        headers=headers,
    ).json()
    # Two paid orders that day in Los Angeles: 34.90 + 19.99; the UNPAID one does not count.
    assert body["value"] == "54.89" and body["display"] == "54.89 USD"
    assert body["period"] == {
        "kind": "day",
        "first": "2026-11-20",
        "last": "2026-11-20",
        "timezone": "America/Los_Angeles",
        "label": "2026-11-20",
    }
    assert body["provisional"] is False and body["incomplete"] is False and body["as_of"]
    # Nothing was sold the day before: the change is known, its ratio is not (from zero).
    # Every number is quantized to its unit: money to its currency's cents.
    assert body["compared_with"] == {
        "period": "2026-11-19",
        "value": "0.00",
        "change": "54.89",
        "change_pp": None,
        "change_ratio": None,
    }
    year = client.get(
        "/api/v1/metrics/gmv",
        headers=headers,
        params={"entity": "shop:tts-us-01", "period": "2026-11-20", "compare": "year_ago"},
    ).json()
    assert year["compared_with"]["period"] == "2025-11-20"
    bad = client.get("/api/v1/metrics/gmv", headers=headers, params={"compare": "lastyear"})
    assert (
        bad.status_code == 400
        and "compare must be previous, year_ago or none" in bad.json()["detail"]
    )
    person = client.get(
        "/api/v1/metrics/gmv",
        params={"entity": "person:jessica.lee", "period": "2026-11-20"},
        headers=headers,
    ).json()
    # jessica.lee is named on the 19.99 order; the 34.90 one was placed during the live she
    # hosted with marcus.brown, so it is credited to both of them.
    assert person["value"] == "54.89" and person["currency"] == "USD"
    marcus = client.get(
        "/api/v1/metrics/gmv",
        params={"entity": "person:marcus.brown", "period": "2026-11-20"},
        headers=headers,
    ).json()
    assert marcus["value"] == "34.90"
    aov = client.get(
        "/api/v1/metrics/aov",
        params={"entity": "tts-us-01", "period": "2026-11-20"},
        headers=headers,
    ).json()
    assert aov["value"] == "27.45"  # 27.445 exactly, rounded half up to cents
    # The team's figure converts GBP and JPY to CNY at the rate of each order's local date.
    team = client.get(
        "/api/v1/metrics/gmv",
        params={"entity": "team:sz-live", "period": "2026-11-20"},
        headers=headers,
    ).json()
    # Shanghai's 2026-11-20: the Amazon JP order (3980 JPY at 0.046210); the UK order that day
    # is a sample and the other was never paid.
    assert team["currency"] == "CNY" and team["missing_rates"] == []
    assert team["value"] == "183.92" and team["display"] == "183.92 CNY"


def test_ranking_and_explanation_endpoints(client: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    ranking = client.get(
        "/api/v1/metrics/gmv/ranking",
        headers=headers,
        params={"team": "la-ops", "role": "streamer", "period": "2026-11-20"},
    ).json()
    assert ranking["currency"] == "USD" and ranking["timezone"] == "America/Los_Angeles"
    assert ranking["previous_period"] == "2026-11-19"
    assert ranking["ranking"] == [
        {
            "person": "jessica.lee",
            "value": "54.89",
            "rank": 1,
            "previous": "0.00",
            "change": "54.89",
        },
        {
            "person": "marcus.brown",
            "value": "34.90",
            "rank": 2,
            "previous": "0.00",
            "change": "34.90",
        },
    ]
    assert [r["person"] for r in ranking["risers"]] == ["jessica.lee", "marcus.brown"]
    assert ranking["fallers"] == []
    explained = client.get(
        "/api/v1/explain/gmv",
        headers=headers,
        params={"entity": "shop:tts-us-01", "period": "2026-11-20"},
    ).json()
    # From nothing on the 19th to two orders: no live the day before, so orders × AOV, and the
    # two factors share the change equally.
    assert (explained["before"], explained["after"], explained["change"]) == (
        "0.00",
        "54.89",
        "54.89",
    )
    assert [(d["name"], d["contribution"]) for d in explained["drivers"]] == [
        ("orders", "27.45"),  # 27.445 each, exactly; rounded to cents for output
        ("aov", "27.45"),
    ]


def test_scorecard_endpoint(client: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    card = client.get(
        "/api/v1/scorecards/li.na", params={"period": "2026-11"}, headers=headers
    ).json()
    assert card["role"] == "streamer" and [i["metric"] for i in card["items"]] == [
        "gmv",
        "avg_watch_seconds",
        "refund_rate",
    ]
    # li.na's only order in the example is a free sample: no GMV, no viewers, no refund rate.
    assert card["items"][0]["value"] == "0.00" and card["items"][0]["target"] == "1500000.00"
    assert card["score"] is None and card["bonus"]["payable"] == "0.00"
    # No refund rate yet: its gate is not met either, and both reasons are given.
    assert card["bonus"]["currency"] == "CNY" and card["bonus"]["withheld"] == ["gate", "no_score"]
    response = client.get("/api/v1/scorecards/zhao.lei", headers=headers)
    assert response.status_code == 404
    assert response.json()["detail"] == "no scorecard is configured for the role 'operator'"


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/api/v1/metrics/gvm", {}, 404, "unknown metric 'gvm'"),
        ("/api/v1/metrics/gmv", {"entity": "team:nope"}, 404, "unknown team 'nope'"),
        ("/api/v1/metrics/gmv", {"entity": "shelf:x"}, 404, "unknown entity kind 'shelf'"),
        ("/api/v1/metrics/gmv", {"period": "someday"}, 400, "'someday' is not a period"),
        # Periods the calendar cannot hold: a bad request, never a 500.
        ("/api/v1/metrics/gmv", {"period": "0000-01"}, 400, "'0000-01' is not a month"),
        ("/api/v1/metrics/gmv", {"period": "9999-12"}, 400, "9999-12-01 is outside the years"),
        ("/api/v1/metrics/gmv", {"period": "9999-W52"}, 400, "9999-12-27 is outside the years"),
    ],
)
def test_metric_endpoint_errors(
    client: TestClient, path: str, params: dict[str, str], status: int, detail: str
) -> None:
    response = client.get(path, params=params, headers={"X-API-Key": KEY})
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)
    assert client.get(path, params=params).status_code == 401


def test_report_command(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    runner = CliRunner()
    for kind in ("orders", "fx_rates"):
        assert (
            runner.invoke(
                app, ["import", kind, str(Path(ROOT / "docs" / "examples" / f"{kind}.csv"))]
            ).exit_code
            == 0
        )
    result = runner.invoke(
        app,
        ["report", "gmv", "orders", "aov", "--entity", "shop:tts-us-01", "--period", "2026-11-20"],
    )
    assert result.exit_code == 0, result.output
    assert "shop tts-us-01 · 2026-11-20 (America/Los_Angeles)" in result.output
    assert "54.89 USD" in result.output and "27.45 USD" in result.output
    assert "vs 2026-11-19 —" in result.output
    result = runner.invoke(
        app, ["report", "refund_rate", "--entity", "company", "--period", "2026-11-20"]
    )
    # No refund has been imported: 0 % is what the data says, and the report says why.
    assert result.exit_code == 0
    assert "0.0%  vs 2026-11-19 —  (no refunds data imported yet)" in result.output
    result = runner.invoke(
        app, ["report", "gmv", "--entity", "shop:tts-us-01", "--period", "2026-11-20", "--why"]
    )
    assert "GMV 2026-11-20 vs 2026-11-19: 0.00 USD → 54.89 USD (+54.89 USD)" in result.output
    assert "biggest driver: orders" in result.output
    result = runner.invoke(app, ["scorecard", "li.na", "--period", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "李娜 (li.na) · streamer · 2026-11: no score yet" in result.output
    assert "target 1,500,000.00 CNY" in result.output
    result = runner.invoke(app, ["report", "gmv", "--period", "2026-13"])
    assert result.exit_code == 2 and "'2026-13' is not a month" in result.output


def test_ready_made_daily_metrics(client: TestClient) -> None:
    headers = {"X-API-Key": KEY}
    shop = client.get(
        "/api/v1/metrics/on_time_delivery_rate",
        headers=headers,
        params={"entity": "shop:amz-jp-01", "period": "2026-11-20"},
    ).json()
    assert shop["value"] == "0.9712" and shop["unit"] == "ratio" and shop["display"] == "97.1%"
    assert shop["sources"] == ["metric_values"] and shop["target"] is None
    person = client.get(
        "/api/v1/metrics/response_rate_12h",
        headers=headers,
        params={"entity": "person:zheng.li", "period": "2026-11-20"},
    ).json()
    assert person["value"] == "0.95"  # 0.9500 as imported, quantized to its unit
    other_day = client.get(
        "/api/v1/metrics/response_rate_12h",
        headers=headers,
        params={"entity": "person:zheng.li", "period": "2026-11-21"},
    ).json()
    assert other_day["value"] is None
    unknown = client.get("/api/v1/metrics/happiness_rate", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("unknown metric")
