"""API keys: named, stored hashed, scoped, revocable with `kpibot apikey`, their use audited;
the API's documentation only when enabled."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import app
from config.settings import Settings
from tests.conftest import EXAMPLE_CONFIG
from tests.pinned import PINNED_AT

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(EXAMPLE_CONFIG))


@pytest.fixture
def client(db_url: str, cli: None) -> Iterator[TestClient]:
    settings = Settings(
        KPIBOT_DATABASE_URL=db_url, KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG, KPIBOT_NOW=PINNED_AT
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def create(name: str, *scopes: str) -> str:
    args = ["apikey", "create", name, *(f"--scope={s}" for s in scopes)]
    made = runner.invoke(app, args)
    assert made.exit_code == 0, made.output
    return made.stdout.strip().splitlines()[0]


def test_a_key_reads_only_what_its_scopes_cover_and_every_use_is_audited(
    client: TestClient, engine: Engine
) -> None:
    key = create("sz-dashboard", "read:team:sz-live")
    assert key.startswith("kpi_")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT name, secret_hash, scopes FROM api_keys")).one()
    assert stored[0] == "sz-dashboard" and stored[2] == "read:team:sz-live"
    assert key.split("_", 2)[2] not in stored[1]  # only the hash is kept

    def get(path: str, token: str = key) -> int:
        return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

    assert get("/api/v1/metrics/gmv?entity=team:sz-live&period=today") == 200
    assert get("/api/v1/metrics/gmv?entity=person:li.na&period=today") == 200
    assert get("/api/v1/metrics/gmv?entity=shop:amz-jp-01&period=today") == 200
    assert get("/api/v1/metrics/gmv?entity=team:la-ops&period=today") == 403
    assert get("/api/v1/metrics/gmv?entity=company&period=today") == 403
    assert get("/api/v1/scorecards/jessica.lee") == 403
    assert (
        client.post(
            "/api/v1/import/fx_rates",
            content=b"date,currency,quote,rate\n2026-11-20,USD,CNY,7.1\n",
            headers={"X-API-Key": key, "Content-Type": "text/csv"},
        ).status_code
        == 403
    )
    assert get("/api/v1/metrics/gmv?entity=company", key + "x") == 401
    assert get("/api/v1/metrics/gmv?entity=company", "kpi_nothing") == 401
    audit = json.loads(runner.invoke(app, ["audit", "--kind", "apikey", "--json"]).output)
    actions = [e["action"] for e in audit]
    assert actions.count("created") == 1 and actions.count("used") == 7
    assert {e["detail"] for e in audit if e["action"] == "used"} >= {
        "GET /api/v1/metrics/gmv",
        "POST /api/v1/import/fx_rates",
    }


def test_an_import_key_imports_and_a_revoked_key_is_refused(client: TestClient) -> None:
    key = create("nightly-import", "import")
    body = b"date,currency,quote,rate\n2026-11-20,USD,CNY,7.1\n"
    headers = {"X-API-Key": key, "Content-Type": "text/csv"}
    assert (
        client.post("/api/v1/import/fx_rates", content=body, headers=headers).json()["inserted"]
        == 1
    )
    assert client.get("/api/v1/metrics/gmv", headers={"X-API-Key": key}).status_code == 403
    listed = runner.invoke(app, ["apikey", "list"]).output
    assert "nightly-import" in listed and "import" in listed and "active" in listed
    again = runner.invoke(app, ["apikey", "create", "nightly-import", "--scope", "import"])
    assert again.exit_code == 2 and "revoke it first" in again.output
    assert runner.invoke(app, ["apikey", "revoke", "nightly-import"]).exit_code == 0
    assert client.post("/api/v1/import/fx_rates", content=body, headers=headers).status_code == 401
    rotated = create("nightly-import", "import")
    assert rotated != key
    bad = runner.invoke(app, ["apikey", "create", "x", "--scope", "read:team:nowhere"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output


def test_the_api_docs_need_enabling(client: TestClient, db_url: str) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 404
    settings = Settings(
        KPIBOT_DATABASE_URL=db_url, KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG, KPIBOT_API_DOCS=True
    )
    with TestClient(create_app(settings)) as documented:
        assert documented.get("/openapi.json").status_code == 200
