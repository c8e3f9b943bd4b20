"""POST /api/v1/import/<kind>: API-key authentication, JSON and CSV bodies, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.app import create_app
from config.settings import Settings
from tests.conftest import EXAMPLE_CONFIG

KEY = "s3cret-import-key"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(
        KPIBOT_DATABASE_URL=db_url, KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG, KPIBOT_API_KEY=KEY
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def count_orders(client: TestClient) -> int:
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM orders")).scalar_one())


ORDERS_JSON = [
    {
        "order_id": "A1",
        "platform": "tiktok",
        "shop_id": "tts-us-01",
        "status": "COMPLETED",
        "currency": "USD",
        "create_time": 1795233600,
        "paid_time": "2026-11-20T20:01:00-08:00",
        "update_time": 1795500100,
        "sub_total": 19.99,
        "total_amount": "23.49",
        "is_sample": False,
    },
    {
        "order_id": "A2",
        "platform": "tiktok",
        "shop_id": "tts-us-01",
        "status": "UNPAID",
        "currency": "USD",
        "create_time": 1795500000,
        "update_time": 1795500100,
        "sub_total": 0.1,
        "total_amount": 0.1,
    },
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": f"Basic {KEY}"},
    ],
)
def test_missing_or_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/api/v1/import/orders", json=ORDERS_JSON, headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert count_orders(client) == 0


def test_json_import_is_exact_and_idempotent(client: TestClient) -> None:
    response = client.post(
        "/api/v1/import/orders?name=tiktok-sync",
        content=json.dumps(ORDERS_JSON),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ok"], body["inserted"], body["source"]) == (True, 2, "tiktok-sync")
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        sub_totals = dict(conn.execute(text("SELECT order_id, sub_total FROM orders")).all())
    assert sub_totals == {"A1": 1999, "A2": 10}  # JSON numbers kept exact, never via float
    again = client.post(
        "/api/v1/import/orders", json=ORDERS_JSON, headers={"X-API-Key": KEY}
    ).json()
    assert (again["inserted"], again["unchanged"]) == (0, 2)


def test_csv_body_and_row_errors(client: TestClient) -> None:
    csv_body = (
        "order_id,platform,shop_id,status,currency,create_time,update_time,sub_total,total_amount\n"
        "A1,tiktok,tts-us-01,UNPAID,USD,1795500000,1795500100,1.00,1.00\n"
        "A2,tiktok,tts-us-01,UNPAID,USD,yesterday,1795500100,1.00,1.00\n"
    )
    response = client.post(
        "/api/v1/import/orders",
        content=csv_body,
        headers={"X-API-Key": KEY, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["error_count"] == 1
    assert body["errors"][0] == {
        "file": "api",
        "line": 3,
        "column": "create_time",
        "value": "yesterday",
        "reason": body["errors"][0]["reason"],
    }
    assert body["errors"][0]["reason"].startswith("is not a time")
    assert count_orders(client) == 0
    ok = client.post(
        "/api/v1/import/orders",
        content=csv_body.rsplit("\n", 2)[0] + "\n",
        headers={"X-API-Key": KEY, "Content-Type": "text/csv"},
    )
    assert ok.status_code == 200 and ok.json()["inserted"] == 1


def test_json_errors_name_the_item(client: TestClient) -> None:
    bad = [dict(ORDERS_JSON[0]), {**ORDERS_JSON[1], "currency": "EURO"}]
    response = client.post("/api/v1/import/orders", json=bad, headers={"X-API-Key": KEY})
    assert response.status_code == 422
    assert response.json()["errors"][0]["item"] == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        (
            "/api/v1/import/invoices",
            "[]",
            404,
            "unknown import kind 'invoices'; kinds: orders, refunds",
        ),
        ("/api/v1/import/orders", "[{", 400, "api (line 1): invalid JSON"),
        ("/api/v1/import/orders", '{"a": 1}', 400, "api: expected a JSON array of objects"),
    ],
)
def test_bad_requests(client: TestClient, path: str, body: str, status: int, detail: str) -> None:
    response = client.post(
        path, content=body, headers={"X-API-Key": KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


def test_refused_without_a_valid_key(db_url: str) -> None:
    settings = Settings(KPIBOT_DATABASE_URL=db_url, KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG)
    with TestClient(create_app(settings)) as test_client:
        response = test_client.post(
            "/api/v1/import/orders", json=ORDERS_JSON, headers={"X-API-Key": ""}
        )
        assert response.status_code == 401
        assert "kpibot apikey create" in response.json()["detail"]
        assert test_client.get("/healthz").json() == {"status": "ok"}


def test_a_body_over_the_documented_size_is_refused_unread(db_url: str) -> None:
    settings = Settings(
        KPIBOT_DATABASE_URL=db_url,
        KPIBOT_CONFIG_DIR=EXAMPLE_CONFIG,
        KPIBOT_API_KEY=KEY,
        KPIBOT_IMPORT_MAX_BYTES=2_000,
    )
    body = json.dumps(ORDERS_JSON)
    assert len(body) < 2_000
    with TestClient(create_app(settings)) as test_client:
        headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
        big = json.dumps(ORDERS_JSON * 10)  # over the limit: nothing of it is imported
        refused = test_client.post("/api/v1/import/orders", content=big, headers=headers)
        assert refused.status_code == 413
        assert "KPIBOT_IMPORT_MAX_BYTES" in refused.json()["detail"]
        assert count_orders(test_client) == 0

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield big[:1_500].encode()
            yield big[1_500:].encode()

        streamed = test_client.post("/api/v1/import/orders", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        accepted = test_client.post("/api/v1/import/orders", content=body, headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert count_orders(test_client) == len(ORDERS_JSON)
