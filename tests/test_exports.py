"""The seller-centre export files as they are, through `kpibot import orders --from`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from bot.cli import app
from kpi_engine.models import Order, Refund
from tests.shopsync import shop_config

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
pytestmark = pytest.mark.db


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KPIBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("KPIBOT_CONFIG_DIR", str(shop_config(tmp_path)))
    return db_url


def _orders(url: str, shop: str) -> dict[str, tuple[object, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Order.order_id, Order.status, Order.sub_total, Order.total_amount, Order.currency
            ).where(Order.shop_id == shop)
        ).all()  # type: ignore[call-overload]
    engine.dispose()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_tiktok_export_lines_become_orders_and_refunds(cli: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            "--from",
            "tiktok-export",
            "--shop",
            "tts-us-01",
            str(EXAMPLES / "tiktok-orders-export.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(orders): 4 orders rows — 4 inserted" in result.output
    assert "(refunds): 1 refunds rows — 1 inserted" in result.output
    found = _orders(cli, "tts-us-01")
    assert found["576684019603311366"] == (
        "COMPLETED",
        4899,
        2915,
        "USD",
    )  # two SKU lines, one order
    assert found["576684019603311368"][0] == "UNPAID"
    engine = create_engine(cli)
    with engine.connect() as conn:
        assert conn.execute(select(Refund.refund_amount, Refund.order_id)).one() == (
            3778,
            "576684019603311367",
        )  # type: ignore[call-overload]
    engine.dispose()
    # The same file from Chinese Excel (GB18030) imports the same: nothing changes.
    gb = tmp_path / "export-gb.csv"
    gb.write_bytes(
        (EXAMPLES / "tiktok-orders-export.csv")
        .read_text(encoding="utf-8-sig")
        .replace("Glow", "光彩")
        .encode("gb18030")
    )
    result = runner.invoke(
        app, ["import", "orders", "--from", "tiktok-export", "--shop", "tts-us-01", str(gb)]
    )
    assert result.exit_code == 0 and "0 inserted" in result.output, result.output


def test_amazon_report_in_shift_jis_and_shopee_xlsx(cli: str) -> None:
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            "--from",
            "amazon-orders-report",
            "--shop",
            "amz-jp-01",
            str(EXAMPLES / "amazon-all-orders-report.txt"),
        ],
    )
    assert result.exit_code == 0, result.output
    found = _orders(cli, "amz-jp-01")
    # 5980 + 3960 - 500 promotion; total adds the item taxes.
    assert found["250-1234567-8901234"] == ("IN_TRANSIT", 9440, 10344, "JPY")
    assert (
        found["250-2234567-8901235"][0] == "UNPAID"
        and found["250-3234567-8901236"][0] == "CANCELLED"
    )
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            "--from",
            "shopee-export",
            "--shop",
            "shp-sg-01",
            str(EXAMPLES / "shopee-orders-export.xlsx"),
        ],
    )
    assert result.exit_code == 0, result.output
    found = _orders(cli, "shp-sg-01")
    assert found["261120ABCDEF02"] == ("AWAITING_SHIPMENT", 3190, 3490, "SGD")
    assert len(found) == 3


def test_a_wrong_file_says_what_it_looks_like(cli: str) -> None:
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            "--from",
            "tiktok-export",
            "--shop",
            "tts-us-01",
            str(EXAMPLES / "amazon-all-orders-report.txt"),
        ],
    )
    assert result.exit_code == 1
    assert (
        "it looks like an Amazon All Orders report (--from amazon-orders-report)" in result.output
    )
    result = runner.invoke(
        app,
        [
            "import",
            "orders",
            "--from",
            "shopee-export",
            "--shop",
            "shp-sg-01",
            str(EXAMPLES / "orders.csv"),
        ],
    )
    assert "it looks like kpibot's own orders format (import it without --from)" in result.output
    result = runner.invoke(
        app, ["import", "orders", "--from", "tiktok-export", str(EXAMPLES / "orders.csv")]
    )
    assert result.exit_code == 2 and "--from needs --shop" in result.output
