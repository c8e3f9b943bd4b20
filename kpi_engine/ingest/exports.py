"""Seller-centre export files as they are: TikTok Shop's order export (CSV), Amazon's All
Orders report (tab-separated) and Shopee's order export (XLSX), mapped to orders and refunds.

Pure mapping: a file in, rows in our import columns out (one order from its line-item rows),
for the same importer as every other source. The exports do not name the shop: the caller says
which; amounts without a currency column are in the shop's currency.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from kpi_engine.ingest.formats import KINDS
from kpi_engine.ingest.readers import RowSource, SourceError, read_xlsx
from kpi_engine.organisation import ShopConfig

Lines = list[tuple[int, dict[str, str]]]
Mapped = tuple[int, dict[str, str], str]  # (first line, row in our columns, raw lines)


class ExportError(ValueError):
    """A file that is not the export it was said to be (the message says what it looks like)."""


@dataclass(frozen=True)
class Export:
    """One platform's export: the columns that identify it and how its lines become rows."""

    name: str
    title: str
    signature: tuple[str, ...]  # columns every file of this export has
    fallback_encoding: str  # after UTF-8 (with or without BOM)
    delimiter: str
    to_rows: Callable[
        [list[tuple[int, dict[str, str]]], ShopConfig], tuple[list[Mapped], list[Mapped]]
    ]


def _amount(value: str) -> Decimal:
    text = value.strip().replace(",", "")
    for mark in ("$", "¥", "￥", "£", "€", "RM", "S$", "₱", "฿", "Rp", "₫"):
        text = text.replace(mark, "")
    if not text:
        return Decimal(0)
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


def _text(number: Decimal) -> str:
    return format(number.normalize(), "f") if number else "0"


_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
)


def _time(value: str) -> str:
    """A seller-centre time as the importer reads it: ISO with offset as is, else naive local
    ISO text (read in the shop's zone by the importer)."""
    text = value.strip()
    if not text:
        return ""
    if "T" in text and ("+" in text[10:] or text.endswith("Z") or "-" in text[19:]):
        return text
    for form in _TIME_FORMATS:
        try:
            return datetime.strptime(text, form).isoformat(sep=" ")
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not a date and time this export uses")


def _raw(lines: list[tuple[int, dict[str, str]]]) -> str:
    return json.dumps([values for _, values in lines], ensure_ascii=False)


def _group(
    lines: list[tuple[int, dict[str, str]]], key: str
) -> dict[str, list[tuple[int, dict[str, str]]]]:
    orders: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, values in lines:
        order_id = values.get(key, "").strip()
        if order_id:
            orders.setdefault(order_id, []).append((line, values))
    return orders


def _latest(*times: str) -> str:
    present = [t for t in times if t]
    return max(present) if present else ""


# -- TikTok Shop Seller Center: Orders → Export (CSV, one row per SKU) -------------------------

TIKTOK_STATUSES = {
    "unpaid": "UNPAID",
    "on hold": "ON_HOLD",
    "awaiting shipment": "AWAITING_SHIPMENT",
    "to ship": "AWAITING_SHIPMENT",
    "awaiting collection": "AWAITING_COLLECTION",
    "partially shipping": "PARTIALLY_SHIPPING",
    "shipped": "IN_TRANSIT",
    "in transit": "IN_TRANSIT",
    "delivered": "DELIVERED",
    "completed": "COMPLETED",
    "cancelled": "CANCELLED",
    "canceled": "CANCELLED",
}


def _tiktok(
    lines: list[tuple[int, dict[str, str]]], shop: ShopConfig
) -> tuple[list[Mapped], list[Mapped]]:
    orders: list[Mapped] = []
    refunds: list[Mapped] = []
    for order_id, rows in _group(lines, "Order ID").items():
        first = rows[0][1]
        status = TIKTOK_STATUSES.get(first["Order Status"].strip().lower(), first["Order Status"])
        created, paid = _time(first["Created Time"]), _time(first.get("Paid Time", ""))
        cancelled = _time(first.get("Cancelled Time", ""))
        updated = _latest(
            created,
            paid,
            _time(first.get("Shipped Time", "")),
            _time(first.get("Delivered Time", "")),
            cancelled,
        )
        sub_total = sum((_amount(v["SKU Subtotal After Discount"]) for _, v in rows), Decimal(0))
        row = {
            "platform": "tiktok",
            "shop_id": shop.id,
            "order_id": order_id,
            "status": status,
            "currency": shop.currency,
            "create_time": created,
            "paid_time": paid if status != "UNPAID" else "",
            "update_time": updated,
            "sub_total": _text(sub_total),
            "total_amount": _text(_amount(first["Order Amount"])),
        }
        orders.append((rows[0][0], row, _raw(rows)))
        refund = _amount(first.get("Order Refund Amount", ""))
        if refund > 0:
            when = cancelled or updated
            refunds.append(
                (
                    rows[0][0],
                    {
                        "platform": "tiktok",
                        "shop_id": shop.id,
                        "refund_id": f"{order_id}-refund",
                        "order_id": order_id,
                        "status": "COMPLETED",
                        "currency": shop.currency,
                        "create_time": when,
                        "update_time": when,
                        "refund_amount": _text(refund),
                    },
                    _raw(rows),
                )
            )
    return orders, refunds


# -- Amazon: All Orders report (GET_FLAT_FILE_ALL_ORDERS_DATA_*), tab-separated, one row per item

AMAZON_STATUSES = {
    "pending": "UNPAID",
    "pending - waiting for pick up": "UNPAID",
    "unshipped": "AWAITING_SHIPMENT",
    "shipping": "PARTIALLY_SHIPPING",
    "shipped": "IN_TRANSIT",
    "shipped - delivered to buyer": "DELIVERED",
    "cancelled": "CANCELLED",
    "canceled": "CANCELLED",
    "complete": "COMPLETED",
}
_AMAZON_TOTAL = (
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
)


def _amazon(
    lines: list[tuple[int, dict[str, str]]], shop: ShopConfig
) -> tuple[list[Mapped], list[Mapped]]:
    orders: list[Mapped] = []
    for order_id, rows in _group(lines, "amazon-order-id").items():
        first = rows[0][1]
        status = AMAZON_STATUSES.get(first["order-status"].strip().lower(), first["order-status"])
        live = [v for _, v in rows if v.get("item-status", "").strip().lower() != "cancelled"] or [
            rows[0][1]
        ]
        sub_total = sum(
            (
                _amount(v.get("item-price", "")) - _amount(v.get("item-promotion-discount", ""))
                for v in live
            ),
            Decimal(0),
        )
        total = sum(
            (
                sum((_amount(v.get(c, "")) for c in _AMAZON_TOTAL), Decimal(0))
                - _amount(v.get("item-promotion-discount", ""))
                - _amount(v.get("ship-promotion-discount", ""))
                for v in live
            ),
            Decimal(0),
        )
        created = _time(first["purchase-date"])
        row = {
            "platform": "amazon",
            "shop_id": shop.id,
            "order_id": order_id,
            "status": status,
            "currency": first.get("currency") or shop.currency,
            "create_time": created,
            "paid_time": created if status not in ("UNPAID", "CANCELLED") else "",
            "update_time": _time(first["last-updated-date"]),
            "sub_total": _text(sub_total),
            "total_amount": _text(total),
        }
        orders.append((rows[0][0], row, _raw(rows)))
    return orders, []


# -- Shopee Seller Centre: My Orders → Export (XLSX, one row per product) ----------------------

SHOPEE_STATUSES = {
    "unpaid": "UNPAID",
    "to ship": "AWAITING_SHIPMENT",
    "shipping": "IN_TRANSIT",
    "to receive": "IN_TRANSIT",
    "completed": "COMPLETED",
    "cancelled": "CANCELLED",
    "return/refund": "DELIVERED",
    "待付款": "UNPAID",
    "待出货": "AWAITING_SHIPMENT",
    "运送中": "IN_TRANSIT",
    "已完成": "COMPLETED",
    "不成立": "CANCELLED",
    "已取消": "CANCELLED",
}


def _shopee(
    lines: list[tuple[int, dict[str, str]]], shop: ShopConfig
) -> tuple[list[Mapped], list[Mapped]]:
    orders: list[Mapped] = []
    for order_id, rows in _group(lines, "Order ID").items():
        first = rows[0][1]
        status = SHOPEE_STATUSES.get(first["Order Status"].strip().lower(), first["Order Status"])
        created, paid = _time(first["Order Creation Date"]), _time(first.get("Order Paid Time", ""))
        sub_total = sum((_amount(v["Product Subtotal"]) for _, v in rows), Decimal(0))
        updated = _latest(
            created,
            paid,
            _time(first.get("Ship Time", "")),
            _time(first.get("Order Complete Time", "")),
        )
        row = {
            "platform": "shopee",
            "shop_id": shop.id,
            "order_id": order_id,
            "status": status,
            "currency": shop.currency,
            "create_time": created,
            "paid_time": paid if status not in ("UNPAID",) else "",
            "update_time": updated,
            "sub_total": _text(sub_total),
            "total_amount": _text(_amount(first["Grand Total"])),
        }
        orders.append((rows[0][0], row, _raw(rows)))
    return orders, []


EXPORTS: dict[str, Export] = {
    e.name: e
    for e in (
        Export(
            "tiktok-export",
            "a TikTok Shop order export",
            (
                "Order ID",
                "Order Status",
                "SKU Subtotal After Discount",
                "Order Amount",
                "Created Time",
            ),
            "gb18030",
            ",",
            _tiktok,
        ),
        Export(
            "amazon-orders-report",
            "an Amazon All Orders report",
            ("amazon-order-id", "purchase-date", "last-updated-date", "order-status", "item-price"),
            "cp932",
            "\t",
            _amazon,
        ),
        Export(
            "shopee-export",
            "a Shopee order export",
            ("Order ID", "Order Status", "Order Creation Date", "Product Subtotal", "Grand Total"),
            "gb18030",
            ",",
            _shopee,
        ),
    )
}


def _decode(data: bytes, fallback: str) -> str:
    for encoding in ("utf-8-sig", fallback):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExportError(f"neither UTF-8 nor {fallback.upper()} text")


def _table(path: Path, export: Export) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            source = read_xlsx(path)
        except SourceError as exc:
            raise ExportError(str(exc)) from None
        return source.header, ((n, v) for n, v, _ in source.rows)
    text = _decode(path.read_bytes(), export.fallback_encoding)
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    return header, ((reader.line_num, values) for values in reader)


def looks_like(header: list[str]) -> str:
    """Which known file this header belongs to, in words."""
    columns = set(header)
    for export in EXPORTS.values():
        if set(export.signature) <= columns:
            return f"{export.title} (--from {export.name})"
    if set(KINDS["orders"].required) <= columns:
        return "kpibot's own orders format (import it without --from)"
    return "none of the known exports"


def read_export(path: Path, name: str, shop: ShopConfig) -> dict[str, RowSource]:
    """The file's orders (and refunds, where the export has them) as import sources."""
    export = EXPORTS[name]
    header, records = _table(path, export)
    missing = [c for c in export.signature if c not in header]
    if missing:
        raise ExportError(
            f"not {export.title}: no column {', '.join(repr(m) for m in missing)}; "
            f"it looks like {looks_like(header)}"
        )
    lines: list[tuple[int, dict[str, str]]] = []
    key = export.signature[0]
    for number, values in records:
        entry = dict(zip(header, (v.strip() for v in values), strict=False))
        # TikTok's export has a second header row describing each column: not an order.
        if not any(entry.values()) or not any(ch.isdigit() for ch in entry.get(key, "")):
            continue
        lines.append((number, entry))
    try:
        orders, refunds = export.to_rows(lines, shop)
    except (ValueError, KeyError) as exc:
        raise ExportError(f"cannot read {export.title}: {exc}") from None
    found = {"orders": _source(path.name, "orders", orders)}
    if refunds:
        found["refunds"] = _source(path.name, "refunds", refunds)
    return found


def _source(name: str, kind: str, rows: list[tuple[int, dict[str, str], str]]) -> RowSource:
    header = [c.name for c in KINDS[kind].columns if any(c.name in r for _, r, _ in rows)]
    return RowSource(
        f"{name} ({kind})",
        header,
        [(line, [row.get(c, "") for c in header], raw) for line, row, raw in rows],
    )
