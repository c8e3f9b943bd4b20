"""The importer's quick parse path (`_RowParser.quick`) gives exactly what the full parse gives,
and refuses to decide every row the full parse refuses or reports."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

import pytest

from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import ImportReport, _RowParser
from kpi_engine.ingest.readers import RowSource
from kpi_engine.organisation import Organisation

HEADER = [
    "order_id", "platform", "shop_id", "status", "currency", "create_time", "paid_time",
    "update_time", "sub_total", "total_amount", "attributed_to", "channel", "is_sample",
]  # fmt: skip
NOW = 1_795_600_000  # 2026-11-23, UTC
CLEAN = [
    "A1", "tiktok", "tts-us-01", "COMPLETED", "USD", "1795500000", "1795500060", "1795500100",
    "19.99", "23.49", "jessica.lee", "live", "false",
]  # fmt: skip
# Cells that the quick path reads itself, must hand to the full parse, or must not accept.
VARIANTS = {
    "order_id": ["A" * 129, "A\x001", " A2 "],
    "platform": ["TikTok", "shopee", "tik tok"],
    "shop_id": ["amz-jp-01", "nope", " tts-us-01"],
    "status": ["completed", "UNPAID", "DONE", "CANCELLED"],
    "currency": ["usd", "JPY", "KWD", "XXQ"],
    "create_time": ["999999999", "946684800", "946684799", "99999999999", "1795500000.0",
                    "2026-11-20 20:00:00", "2026-11-20T20:00:00+08:00", "１７９５５００００００",
                    "1795500061", str(NOW + 86_400), str(NOW + 86_401), "0001795500000"],
    "paid_time": ["", "1795499999", "2026-03-08 02:30:00"],
    "sub_total": ["19.9", "19.990", "19.991", "0019.99", "+19.99", "-19.99", "-0.00", ".99",
                  "19.", "1e3", "1_000.00", "١٩.٩٩", "١٩.99", "١٢٠٠", "19.９９", "1200",
                  "1200.00", "1200.5",
                  "1.234", "9" * 15 + ".00", "9" * 16 + ".00", "0" * 20 + "1.00", "nan", ""],
    "total_amount": ["0.00", "0", "23.4"],
    "attributed_to": ["", "nobody", "jessica.lee"],
    "channel": ["", "LIVE", "tv"],
    "is_sample": ["", "TRUE", "1", "y", "maybe"],
}  # fmt: skip


def parser(organisation: Organisation) -> _RowParser:
    kind = KINDS["orders"]
    source = RowSource("f.csv", HEADER, iter(()))
    plan = {name: HEADER.index(name) for name in HEADER}
    return _RowParser(kind, organisation, source, plan, latest=NOW + 86_400)


def outcomes(parse: _RowParser, values: list[str]) -> tuple[object, object]:
    """(the quick path's values or None, the full parse's values or None)."""
    try:
        quick = parse.quick(values)
    except Exception:
        quick = None
    full = parse.parse_fully(2, values, None, ImportReport(kind="orders", source="f.csv"))
    return quick, None if full is None else full[1]


def test_a_clean_row_takes_the_quick_path(organisation: Organisation) -> None:
    quick, full = outcomes(parser(organisation), CLEAN)
    assert quick is not None and quick == full


@pytest.mark.parametrize("column", list(VARIANTS))
def test_the_quick_path_never_differs_from_the_full_parse(
    organisation: Organisation, column: str
) -> None:
    parse = parser(organisation)
    position = HEADER.index(column)
    # Each cell alone, and with the currency and shop each other cell depends on varied too.
    others = itertools.product(["USD", "JPY", "KWD"], ["tts-us-01", "amz-jp-01"])
    for cell, (currency, shop) in itertools.product(VARIANTS[column], others):
        values = list(CLEAN)
        values[HEADER.index("currency")] = currency
        values[HEADER.index("shop_id")] = shop
        values[HEADER.index("platform")] = "amazon" if shop.startswith("amz") else "tiktok"
        values[position] = cell
        for _ in range(2):  # the second time from what the quick path remembered
            quick, full = outcomes(parse, values)
            assert quick is None or quick == full, (column, cell, currency, shop)


def test_a_shop_opening_day_sends_earlier_times_to_the_full_parse(
    organisation: Organisation,
) -> None:
    shop = organisation.shops["tts-us-01"]
    opened = shop.model_copy(update={"opened": date(2026, 11, 20)})
    young = dataclasses.replace(organisation, shops={**organisation.shops, shop.id: opened})
    parse = parser(young)
    for created in ("1795500000", "1795161599", "1795161600"):  # 11-20 00:00 in LA, and before
        values = list(CLEAN)
        values[5] = values[6] = values[7] = created
        quick, full = outcomes(parse, values)
        assert quick is None or quick == full, created
    assert outcomes(parse, CLEAN)[0] is not None
