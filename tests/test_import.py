"""The importer on real databases: exact values, idempotence, revisions with history, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.importer import ERROR_LISTING_CAP, import_file
from kpi_engine.organisation import Organisation

ORDER_HEADER = (
    "order_id,platform,shop_id,status,currency,create_time,paid_time,update_time,"
    "sub_total,total_amount,attributed_to,channel,is_sample"
)


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        "import_batches",
        "orders",
        "refunds",
        "live_sessions",
        "ad_spend",
        "fx_rates",
        "metric_values",
        "record_history",
    ]
    with engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
            for t in tables
        }


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def orders(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM orders")).mappings()
        return {r["order_id"]: dict(r) for r in rows}


def test_clean_file_stores_exact_values(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        # naive times are read in the shop's zone: Los Angeles (PST, UTC-8) in November
        "A1,tiktok,tts-us-01,COMPLETED,USD,2026-11-20 20:00:00,2026-11-20T20:01:30-08:00,1795500000,19.99,23.49,jessica.lee,live,false",
        # Tokyo, JPY has no minor unit; an offset wins over the shop's zone; epoch seconds
        "J1,amazon,amz-jp-01,DELIVERED,JPY,2026-11-20T10:00:00+09:00,1795568405,1795600000,1200.00,1500,,mall,",
        'U1,tiktok,tts-gb-01,UNPAID,GBP,2026-07-01 12:00:00,,1795500000,"5.5",5.50,,,yes',
    )
    report = import_file(engine, organisation, KINDS["orders"], file)
    assert report.ok, report.render()
    assert (report.rows, report.inserted, report.revised, report.unchanged) == (3, 3, 0, 0)
    stored = orders(engine)
    assert stored["A1"]["create_time"] == epoch(2026, 11, 21, 4, 0, 0)
    assert stored["A1"]["paid_time"] == epoch(2026, 11, 21, 4, 1, 30)
    assert (stored["A1"]["sub_total"], stored["A1"]["total_amount"]) == (1999, 2349)
    assert stored["A1"]["attributed_to"] == "jessica.lee"
    assert stored["J1"]["create_time"] == epoch(2026, 11, 20, 1, 0, 0)
    assert (stored["J1"]["sub_total"], stored["J1"]["total_amount"]) == (1200, 1500)
    assert stored["J1"]["paid_time"] == 1795568405
    # London is on BST (UTC+1) in July
    assert stored["U1"]["create_time"] == epoch(2026, 7, 1, 11, 0, 0)
    assert stored["U1"]["paid_time"] is None and bool(stored["U1"]["is_sample"]) is True
    assert stored["U1"]["sub_total"] == 550
    # the source record is kept as it was written
    assert stored["A1"]["raw"] == (
        "A1,tiktok,tts-us-01,COMPLETED,USD,2026-11-20 20:00:00,2026-11-20T20:01:30-08:00,"
        "1795500000,19.99,23.49,jessica.lee,live,false"
    )
    assert (
        stored["U1"]["raw"]
        == 'U1,tiktok,tts-gb-01,UNPAID,GBP,2026-07-01 12:00:00,,1795500000,"5.5",5.50,,,yes'
    )


def test_reimport_changes_nothing(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        "A1,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500100,19.99,23.49,,live,",
        "A2,tiktok,tts-us-01,AWAITING_SHIPMENT,USD,1795500000,1795500060,1795500100,9.99,9.99,,,",
    )
    assert import_file(engine, organisation, KINDS["orders"], file).inserted == 2
    before = snapshot(engine)
    again = import_file(engine, organisation, KINDS["orders"], file)
    assert again.ok and (again.inserted, again.revised, again.unchanged) == (0, 0, 2)
    assert snapshot(engine) == before


def test_newer_update_time_revises_and_keeps_history(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    first = write(
        tmp_path / "day1.csv",
        ORDER_HEADER,
        "A1,tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,19.99,23.49,,live,",
        "A2,tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,5.00,5.00,,live,",
    )
    import_file(engine, organisation, KINDS["orders"], first)
    second = write(
        tmp_path / "day3.csv",
        ORDER_HEADER,
        "A1,tiktok,tts-us-01,CANCELLED,USD,1795500000,1795500060,1795672900,19.99,23.49,,live,",
        "A2,tiktok,tts-us-01,DELIVERED,USD,1795500000,1795500060,1795400000,5.00,5.00,,live,",
    )
    report = import_file(engine, organisation, KINDS["orders"], second)
    assert report.ok, report.render()
    assert (report.inserted, report.revised, report.unchanged, report.stale) == (0, 1, 0, 1)
    stored = orders(engine)
    assert (stored["A1"]["status"], stored["A1"]["revision"]) == ("CANCELLED", 2)
    assert (stored["A2"]["status"], stored["A2"]["revision"]) == ("IN_TRANSIT", 1)  # stale ignored
    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT record_id, revision, data, superseded_by_batch FROM record_history")
        ).all()
    assert len(history) == 1
    old = json.loads(history[0].data)
    assert (history[0].record_id, history[0].revision) == (stored["A1"]["id"], 1)
    assert (old["status"], old["update_time"], old["batch_id"]) == ("IN_TRANSIT", 1795500100, 1)
    assert history[0].superseded_by_batch == stored["A1"]["batch_id"] == report.batch_id


def test_versions_in_one_file_across_chunks(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    rows = [
        f"B{i},tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,1.00,1.00,,,"
        for i in range(5)
    ]
    rows += [
        "B1,tiktok,tts-us-01,DELIVERED,USD,1795500000,1795500060,1795500200,1.00,1.00,,,",
        "B1,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500300,1.00,1.00,,,",
        "B4,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500300,1.00,1.00,,,",
        "B4,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500300,1.00,1.00,,,",
    ]
    file = write(tmp_path / "orders.csv", ORDER_HEADER, *rows)
    from kpi_engine.ingest.importer import import_rows
    from kpi_engine.ingest.readers import read_path

    for chunk_size in (3, 5000):
        report = import_rows(
            engine, organisation, KINDS["orders"], read_path(file), chunk_size=chunk_size
        )
        if chunk_size == 3:
            assert (report.inserted, report.revised, report.unchanged) == (5, 3, 1), report.render()
        else:
            # the older versions in the file are now stale, the newest unchanged
            assert (report.inserted, report.revised, report.unchanged, report.stale) == (0, 0, 6, 3)
    stored = orders(engine)
    assert (stored["B1"]["status"], stored["B1"]["revision"]) == ("COMPLETED", 3)
    assert (stored["B4"]["status"], stored["B4"]["revision"]) == ("COMPLETED", 2)
    with engine.connect() as conn:
        history = conn.execute(text("SELECT record_id, revision, data FROM record_history")).all()
    assert sorted(
        (h.record_id, h.revision, json.loads(h.data)["status"]) for h in history
    ) == sorted(
        [
            (stored["B1"]["id"], 1, "IN_TRANSIT"),
            (stored["B1"]["id"], 2, "DELIVERED"),
            (stored["B4"]["id"], 1, "IN_TRANSIT"),
        ]
    )


def test_same_update_time_with_other_values_is_an_error(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    import_file(
        engine,
        organisation,
        KINDS["orders"],
        write(
            tmp_path / "a.csv",
            ORDER_HEADER,
            "A1,tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,19.99,23.49,,,",
        ),
    )
    before = snapshot(engine)
    report = import_file(
        engine,
        organisation,
        KINDS["orders"],
        write(
            tmp_path / "b.csv",
            ORDER_HEADER,
            "A9,tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,1.00,1.00,,,",
            "A1,tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,18.99,23.49,,,",
        ),
    )
    assert not report.ok
    assert [str(e) for e in report.errors] == [
        "b.csv: line 3, column update_time: differs from the stored row with the same update_time; "
        "give the change a newer update_time"
    ]
    assert snapshot(engine) == before


def test_bad_rows_are_all_reported_and_nothing_is_written(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "bad.csv",
        ORDER_HEADER,
        "A1,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500100,19.99,23.49,,live,",
        'A2,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500100,19.999,23.49,,"li\nve",',
        "A3,tiktok,tts-xx-01,SHIPPED,USD,1795500000,1795500060,1795500100,19.99,23.49,,,",
        "A4,amazon,tts-us-01,COMPLETED,USD,2026-03-08 02:30:00,,1795500100,1,1,nobody,tv,maybe",
        "A5,tiktok,amz-jp-01,COMPLETED,JPY,1795500000,1795500060,1795500100,12.5,13,,,",
        "A6,tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500100,1,1,,,,extra",
    )
    report = import_file(engine, organisation, KINDS["orders"], file)
    assert not report.ok and report.batch_id is None
    listed = [str(e) for e in report.errors]
    assert listed == [
        "bad.csv: line 3, column sub_total: '19.999' has more decimals than USD allows (2)",
        "bad.csv: line 3, column channel: 'li\\nve' must be one of live, video, mall, ads, other",
        "bad.csv: line 5, column shop_id: 'tts-xx-01' unknown shop (add it to the shops section of the config)",
        "bad.csv: line 5, column status: 'SHIPPED' must be one of UNPAID, ON_HOLD, AWAITING_SHIPMENT, "
        "PARTIALLY_SHIPPING, AWAITING_COLLECTION, IN_TRANSIT, DELIVERED, COMPLETED, CANCELLED",
        "bad.csv: line 6, column shop_id: 'tts-us-01' shop tts-us-01 is a tiktok shop, not amazon",
        "bad.csv: line 6, column attributed_to: 'nobody' unknown person id (add them to the people section of the config)",
        "bad.csv: line 6, column channel: 'tv' must be one of live, video, mall, ads, other",
        "bad.csv: line 6, column is_sample: 'maybe' must be true or false",
        "bad.csv: line 7, column shop_id: 'amz-jp-01' shop amz-jp-01 is a amazon shop, not tiktok",
        "bad.csv: line 7, column sub_total: '12.5' has more decimals than JPY allows (0)",
        "bad.csv: line 8: row has 14 fields but the header has 13",
    ]
    assert report.error_count == len(listed)
    assert "nothing was imported" in report.render()
    assert all(not rows for rows in snapshot(engine).values())


def test_error_listing_is_capped(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    rows = [
        f"X{i},tiktok,tts-us-01,COMPLETED,USD,1795500000,1795500060,1795500100,1.001,1,,,"
        for i in range(120)
    ]
    report = import_file(
        engine, organisation, KINDS["orders"], write(tmp_path / "many.csv", ORDER_HEADER, *rows)
    )
    assert report.error_count == 120 and len(report.errors) == ERROR_LISTING_CAP
    assert report.render().endswith(f"… and {120 - ERROR_LISTING_CAP} more")


def test_header_problems(engine: Engine, organisation: Organisation, tmp_path: Path) -> None:
    file = write(
        tmp_path / "h.csv",
        "order_id,platform,shop,status,currency,create_time,update_time,subtotal,total_amount",
        "A1,tiktok,tts-us-01,COMPLETED,USD,1,2,3,4",
    )
    report = import_file(engine, organisation, KINDS["orders"], file)
    assert [str(e) for e in report.errors] == [
        "h.csv: line 1, column shop: unknown column for orders (did you mean 'shop_id'?)",
        "h.csv: line 1, column subtotal: unknown column for orders (did you mean 'sub_total'?)",
        "h.csv: line 1, column shop_id: required column is missing",
        "h.csv: line 1, column sub_total: required column is missing",
    ]
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert [str(e) for e in import_file(engine, organisation, KINDS["orders"], empty).errors] == [
        "empty.csv: the file is empty (expected a header row)"
    ]


def test_xlsx_import_matches_csv(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(ORDER_HEADER.split(","))
    # Excel gives numbers and naive datetimes, which are local times of the shop.
    sheet.append(
        [
            "A1",
            "tiktok",
            "tts-us-01",
            "COMPLETED",
            "USD",
            datetime(2026, 11, 20, 20, 0),
            datetime(2026, 11, 20, 20, 1),
            1795500100,
            19.99,
            23.5,
            None,
            "live",
            False,
        ]
    )
    sheet.append(
        [
            "J1",
            "amazon",
            "amz-jp-01",
            "DELIVERED",
            "JPY",
            "2026-11-20 10:00:00",
            "2026-11-20 10:00:05",
            1795500100,
            1200,
            1500,
            None,
            None,
            None,
        ]
    )
    sheet.append(
        [
            "J2",
            "amazon",
            "amz-jp-01",
            "DELIVERED",
            "JPY",
            "2026-11-20 10:00:00",
            "2026-11-20 10:00:05",
            1795500100,
            1200.5,
            1500,
            None,
            None,
            None,
        ]
    )
    workbook.save(tmp_path / "orders.xlsx")
    report = import_file(engine, organisation, KINDS["orders"], tmp_path / "orders.xlsx")
    assert [str(e) for e in report.errors] == [
        "orders.xlsx: line 4, column sub_total: '1200.5' has more decimals than JPY allows (0)"
    ]
    sheet.delete_rows(4)
    workbook.save(tmp_path / "orders.xlsx")
    report = import_file(engine, organisation, KINDS["orders"], tmp_path / "orders.xlsx")
    assert report.ok and report.inserted == 2, report.render()
    stored = orders(engine)
    assert stored["A1"]["create_time"] == epoch(2026, 11, 21, 4, 0, 0)
    assert (stored["A1"]["sub_total"], stored["A1"]["total_amount"]) == (1999, 2350)
    assert stored["J1"]["sub_total"] == 1200


def test_every_kind_imports(engine: Engine, organisation: Organisation, tmp_path: Path) -> None:
    files = {
        "refunds": (
            "refund_id,order_id,platform,shop_id,status,currency,create_time,update_time,refund_amount",
            ["R1,A1,tiktok,tts-us-01,COMPLETED,USD,2026-11-21 10:00:00,2026-11-22 10:00:00,19.99"],
        ),
        "live_sessions": (
            "session_id,platform,shop_id,hosts,start_time,end_time,views,viewers,avg_viewing_seconds,product_impressions,product_clicks,comments,likes,new_followers",
            [
                'L1,tiktok,tts-gb-01,"li.na, zhang.wei",2026-11-20 19:00:00,2026-11-20 22:30:00,120000,45000,87.5,300000,12000,800,90000,350'
            ],
        ),
        "ad_spend": (
            "platform,account,campaign,date,person_id,currency,spend,impressions,clicks,conversions,attributed_revenue",
            ["tiktok,ACC1,CMP1,2026-11-20,sophia.nguyen,USD,250.00,100000,2500,80,1800.40"],
        ),
        "fx_rates": (
            "date,currency,quote,rate",
            ["2026-11-20,USD,CNY,7.1234", "2026-11-20,JPY,CNY,0.047312"],
        ),
        "metric_values": (
            "metric,entity_type,entity_id,date,value",
            [
                "on_time_delivery_rate,shop,amz-jp-01,2026-11-20,0.9712",
                "response_rate_12h,person,zheng.li,2026-11-20,0.95",
            ],
        ),
    }
    for kind, (header, rows) in files.items():
        report = import_file(
            engine, organisation, KINDS[kind], write(tmp_path / f"{kind}.csv", header, *rows)
        )
        assert report.ok and report.inserted == len(rows), report.render()
        again = import_file(engine, organisation, KINDS[kind], tmp_path / f"{kind}.csv")
        assert again.unchanged == len(rows) and again.inserted == again.revised == 0
    with engine.connect() as conn:
        live = conn.execute(
            text("SELECT hosts, avg_viewing_ms, start_time, end_time FROM live_sessions")
        ).one()
        ads = conn.execute(text("SELECT date, spend, attributed_revenue FROM ad_spend")).one()
        fx = conn.execute(text("SELECT rate FROM fx_rates WHERE currency = 'JPY'")).scalar_one()
        refund = conn.execute(text("SELECT refund_amount, create_time FROM refunds")).one()
    assert live.hosts == "li.na,zhang.wei" and live.avg_viewing_ms == 87500
    assert live.end_time - live.start_time == 3.5 * 3600
    assert (str(ads.date), ads.spend, ads.attributed_revenue) == ("2026-11-20", 25000, 180040)
    assert fx == "0.047312"
    assert refund.refund_amount == 1999 and refund.create_time == epoch(2026, 11, 21, 18, 0, 0)
    # An unversioned kind revises on any change, keeping the old value.
    write(
        tmp_path / "ad_spend.csv",
        files["ad_spend"][0],
        "tiktok,ACC1,CMP1,2026-11-20,sophia.nguyen,USD,260.00,100000,2500,80,1800.40",
    )
    report = import_file(engine, organisation, KINDS["ad_spend"], tmp_path / "ad_spend.csv")
    assert report.revised == 1
    with engine.connect() as conn:
        old = json.loads(
            conn.execute(
                text("SELECT data FROM record_history WHERE kind = 'ad_spend'")
            ).scalar_one()
        )
    assert (old["spend"], old["date"]) == (25000, "2026-11-20")


@pytest.mark.parametrize(
    ("kind", "header", "row", "expected"),
    [
        (
            "live_sessions",
            "session_id,platform,shop_id,hosts,start_time,end_time",
            "L1,tiktok,tts-gb-01,li.na;ghost,2026-11-20 19:00:00,2026-11-20 18:00:00",
            ["column hosts: 'li.na;ghost' unknown person id 'ghost'"],
        ),
        (
            "live_sessions",
            "session_id,platform,shop_id,hosts,start_time,end_time",
            "L1,tiktok,tts-gb-01,li.na,2026-11-20 19:00:00,2026-11-20 18:00:00",
            ["column end_time: the live ends before it starts"],
        ),
        (
            "fx_rates",
            "date,currency,quote,rate",
            "2026-02-30,usd,CNY,-7",
            [
                "column date: '2026-02-30' is not a date (expected YYYY-MM-DD)",
                "column rate: '-7' must be a positive decimal number",
            ],
        ),
        (
            "metric_values",
            "metric,entity_type,entity_id,date,value",
            "On Time,shop,nowhere,2026-11-20,x",
            [
                "column metric: 'On Time' metric keys are lower_snake_case, such as on_time_delivery_rate",
                "column entity_id: 'nowhere' unknown shop id",
                "column value: 'x' must be a decimal number",
            ],
        ),
        (
            "orders",
            ORDER_HEADER,
            "A1,tiktok,tts-us-01,DELIVERED,USD,1795500000,,1795500100,1,1,,,",
            ["column paid_time: a DELIVERED order must have a paid_time"],
        ),
        (
            # A superscript digit and an exponent: one located error each, never a crash.
            "orders",
            ORDER_HEADER,
            "A1,tiktok,tts-us-01,DELIVERED,USD,1795500000,1795500060,1795500100,²,1e400,,,",
            [
                "column sub_total: '²' is not a decimal amount",
                "column total_amount: '1e400' is not a decimal amount",
            ],
        ),
    ],
)
def test_row_level_checks(
    engine: Engine,
    organisation: Organisation,
    tmp_path: Path,
    kind: str,
    header: str,
    row: str,
    expected: list[str],
) -> None:
    report = import_file(engine, organisation, KINDS[kind], write(tmp_path / "f.csv", header, row))
    assert [str(e).removeprefix("f.csv: line 2, ") for e in report.errors] == expected


def test_parallel_parsing_matches_sequential(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    from kpi_engine.ingest.importer import import_rows
    from kpi_engine.ingest.readers import read_path

    good = [
        f"P{i},tiktok,tts-us-01,IN_TRANSIT,USD,1795500000,1795500060,1795500100,{i}.50,{i}.50,,,"
        for i in range(1, 1201)
    ]
    good += [
        f"P{i},tiktok,tts-us-01,DELIVERED,USD,1795500000,1795500060,1795500200,{i}.50,{i}.50,,,"
        for i in range(1, 1201, 7)
    ]
    file = write(tmp_path / "orders.csv", ORDER_HEADER, *good)
    report = import_rows(
        engine, organisation, KINDS["orders"], read_path(file), chunk_size=100, parallel=True
    )
    assert report.ok, report.render()
    assert (report.rows, report.inserted, report.revised) == (1372, 1200, 172)
    stored = orders(engine)
    assert stored["P8"]["status"] == "DELIVERED" and stored["P8"]["sub_total"] == 850
    assert stored["P9"]["status"] == "IN_TRANSIT"

    # Errors found by the child are reported exactly as in-process parsing reports them.
    bad = [row.replace(",USD,", ",US$,") if i % 3 == 0 else row for i, row in enumerate(good)]
    write(tmp_path / "bad.csv", ORDER_HEADER, *bad)
    results = [
        import_rows(
            engine,
            organisation,
            KINDS["orders"],
            read_path(tmp_path / "bad.csv"),
            chunk_size=100,
            parallel=parallel,
        )
        for parallel in (False, True)
    ]
    assert results[0].error_count == results[1].error_count == 458
    assert [str(e) for e in results[0].errors] == [str(e) for e in results[1].errors]
    assert results[1].rows == 1372 and results[1].batch_id is None

    # A source that breaks mid-way (an unclosed quote) stops the import with its line.
    write(tmp_path / "broken.csv", ORDER_HEADER, *good[:300], 'P9999,"tiktok,tts-us-01')
    broken = import_rows(
        engine,
        organisation,
        KINDS["orders"],
        read_path(tmp_path / "broken.csv"),
        chunk_size=100,
        parallel=True,
    )
    assert [str(e) for e in broken.errors] == [
        "broken.csv: line 302: a quoted field is never closed"
    ]
    assert orders(engine)["P8"]["revision"] == 2  # nothing from the failed imports was written


def test_a_file_separated_by_semicolons_gets_a_delimiter_hint(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    row = "A1,tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,1.00,1.00,,,"
    file = write(tmp_path / "semi.csv", ORDER_HEADER.replace(",", ";"), row.replace(",", ";"))
    report = import_file(engine, organisation, KINDS["orders"], file)
    assert [str(e) for e in report.errors] == [
        "semi.csv: line 1: the columns are separated by semicolons (;), not commas: save the "
        "file as comma-separated CSV (Excel: “CSV UTF-8 (Comma delimited)”)"
    ]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(("encoding", "bad_line"), [("gbk", 181), ("gb18030", 5)])
def test_a_file_in_a_chinese_encoding_is_refused_at_its_first_such_line(
    engine: Engine,
    organisation: Organisation,
    tmp_path: Path,
    encoding: str,
    bad_line: int,
    parallel: bool,
) -> None:
    rows = [
        f"C{i},tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,1.00,1.00,,,"
        for i in range(2, 240)
    ]
    # Plain ASCII up to the bad line (the text reader decodes blocks of 8 KB ahead), then an
    # order id in Chinese.
    rows[bad_line - 2] = rows[bad_line - 2].replace(f"C{bad_line}", f"订单{bad_line}")
    file = tmp_path / "gbk.csv"
    file.write_bytes(("\n".join([ORDER_HEADER, *rows]) + "\n").encode(encoding))
    report = import_file(engine, organisation, KINDS["orders"], file, parallel=parallel)
    assert [str(e) for e in report.errors] == [
        f"gbk.csv: line {bad_line}: not UTF-8 text (invalid start byte); saved as GBK/GB18030 "
        "or Shift_JIS? save it as “CSV UTF-8” (Excel) or UTF-8"
    ]
    binary = tmp_path / "orders.csv"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb4\xc3")
    report = import_file(engine, organisation, KINDS["orders"], binary, parallel=parallel)
    assert [str(e) for e in report.errors] == [
        "orders.csv: line 1: not UTF-8 text (invalid start byte); it looks like an Excel "
        "workbook: give it the .xlsx extension"
    ]


@pytest.mark.parametrize("chunk_size", [1, 5000])
def test_a_key_twice_in_one_file_with_other_values_is_a_duplicate(
    engine: Engine, organisation: Organisation, tmp_path: Path, chunk_size: int
) -> None:
    from kpi_engine.ingest.importer import import_rows
    from kpi_engine.ingest.readers import read_path

    def imported(kind: str, header: str, *rows: str) -> list[str]:
        file = write(tmp_path / f"{kind}.csv", header, *rows)
        report = import_rows(
            engine, organisation, KINDS[kind], read_path(file), chunk_size=chunk_size
        )
        return [str(e) for e in report.errors]

    earlier = "line 2" if chunk_size > 1 else "an earlier line"
    assert imported(
        "orders",
        ORDER_HEADER,
        "A1,tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,1.00,1.00,,,",
        "A1,tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,2.00,2.00,,,",
        "A1,tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,1.00,1.00,,,",  # the same: fine
    ) == [
        f"orders.csv: line 3, column order_id: duplicate of {earlier} (platform=tiktok, "
        "shop_id=tts-us-01, order_id=A1) with other values: one row per platform + shop_id + "
        "order_id + update_time in a file"
    ]
    # A kind without versions: two rates for one day are a duplicate, not a revision.
    assert imported(
        "fx_rates", "date,currency,quote,rate", "2026-11-20,USD,CNY,7.12", "2026-11-20,USD,CNY,7.21"
    ) == [
        f"fx_rates.csv: line 3, column date: duplicate of {earlier} (currency=USD, quote=CNY, "
        "date=2026-11-20) with other values: one row per currency + quote + date in a file"
    ]
    assert all(not rows for rows in snapshot(engine).values())


def test_ids_amounts_and_times_out_of_their_documented_form_are_refused(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    now = epoch(2026, 11, 24, 2, 30, 0)
    row = "{id},tiktok,tts-us-01,COMPLETED,USD,{created},1795500060,{updated},{amount},1.00,,,"

    def refused(**cells: str) -> list[str]:
        values = {
            "id": "A1",
            "created": "1795500000",
            "updated": "1795500100",
            "amount": "1.00",
            **cells,
        }
        file = write(tmp_path / "f.csv", ORDER_HEADER, row.format(**values))
        report = import_file(engine, organisation, KINDS["orders"], file, now=now)
        return [str(e).removeprefix("f.csv: line 2, ") for e in report.errors]

    assert refused(id="A" * 1_000_000) == [
        f"column order_id: {'A' * 100 + '…'!r} is longer than 128 characters: not an id"
    ]
    control = "holds a line break, tab or other control character: not an id"
    assert refused(id="A\x001") == [f"column order_id: 'A\\x001' {control}"]
    assert refused(id='"A\n1"') == [f"column order_id: 'A\\n1' {control}"]
    assert refused(amount="-1.00") == [
        "column sub_total: '-1.00' is negative: amounts are 0 or more"
    ]
    future = "lies in the future (after the time of this import)"
    assert refused(created="2030-01-01 00:00:00", updated="2030-01-01 00:00:00") == [
        f"column create_time: '2030-01-01 00:00:00' {future}",
        f"column update_time: '2030-01-01 00:00:00' {future}",
    ]
    # Within a day of the import's time is a clock's skew, not the future.
    assert refused(updated=str(now + 3600), created=str(now)) == []


def test_times_before_the_shop_opened_are_refused(
    engine: Engine, organisation: Organisation, tmp_path: Path
) -> None:
    import dataclasses
    from datetime import date

    shop = organisation.shops["tts-us-01"]  # America/Los_Angeles
    opened = shop.model_copy(update={"opened": date(2026, 11, 20)})
    young = dataclasses.replace(organisation, shops={**organisation.shops, shop.id: opened})
    row = "{id},tiktok,tts-us-01,COMPLETED,USD,{created},{created},{created},1.00,1.00,,,"
    file = write(
        tmp_path / "f.csv",
        ORDER_HEADER,
        row.format(id="A1", created="2026-11-19 23:59:59"),  # the evening before, local time
        row.format(id="A2", created="2026-11-20 00:00:00"),  # its first second
    )
    report = import_file(engine, young, KINDS["orders"], file, now=epoch(2026, 11, 24, 0, 0, 0))
    before = "is before the shop opened (`opened` in shops.yaml)"
    assert [str(e) for e in report.errors] == [
        f"f.csv: line 2, column {column}: '2026-11-19 23:59:59' {before}"
        for column in ("create_time", "paid_time", "update_time")
    ]
    # The same file with no opening day configured: both rows are stored.
    assert import_file(
        engine, organisation, KINDS["orders"], file, now=epoch(2026, 11, 24, 0, 0, 0)
    ).ok
