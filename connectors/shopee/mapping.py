"""Shopee orders and returns as our import rows."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from connectors.base import Row
from connectors.errors import BadResponse

ORDER_STATUSES = {
    "UNPAID": "UNPAID",
    "PENDING": "UNPAID",
    "READY_TO_SHIP": "AWAITING_SHIPMENT",
    "RETRY_SHIP": "AWAITING_SHIPMENT",
    "INVOICE_PENDING": "AWAITING_SHIPMENT",
    "PROCESSED": "AWAITING_COLLECTION",
    "SHIPPED": "IN_TRANSIT",
    "TO_CONFIRM_RECEIVE": "DELIVERED",
    "TO_RETURN": "DELIVERED",
    "COMPLETED": "COMPLETED",
    "IN_CANCEL": "ON_HOLD",  # paid, a cancellation under way
    "CANCELLED": "CANCELLED",
}
RETURN_STATUSES = {
    "REQUESTED": "REQUESTED",
    "PROCESSING": "REQUESTED",
    "JUDGING": "REQUESTED",
    "SELLER_DISPUTE": "REQUESTED",
    "ACCEPTED": "APPROVED",
    "REFUND_PAID": "COMPLETED",
    "CLOSED": "CANCELLED",
    "CANCELLED": "CANCELLED",
}


def amount_text(value: Any) -> str:
    """A Shopee amount (a JSON float, read exactly) as plain decimal text: 19.9, 150000."""
    number = Decimal(str(value))
    return format(number.normalize(), "f")


def _raw(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def to_order_row(shop_id: str, order: dict[str, Any]) -> tuple[Row, str]:
    """One order (get_order_detail) as an orders row.

    sub_total is the items' discounted prices times their quantities; paid_time is pay_time,
    or for cash on delivery (no pay_time) the order's creation once it is past UNPAID.
    """
    sn = order.get("order_sn", "?")
    status = str(order.get("order_status", ""))
    if status not in ORDER_STATUSES:
        raise BadResponse(f"Shopee order {sn}: unknown status {status!r}")
    try:
        sub_total = sum(
            (
                Decimal(str(item["model_discounted_price"])) * int(item["model_quantity_purchased"])
                for item in order.get("item_list") or []
            ),
            Decimal(0),
        )
        row: Row = {
            "platform": "shopee",
            "shop_id": shop_id,
            "order_id": str(order["order_sn"]),
            "status": ORDER_STATUSES[status],
            "currency": str(order["currency"]),
            "create_time": str(order["create_time"]),
            "update_time": str(order["update_time"]),
            "sub_total": amount_text(sub_total),
            "total_amount": amount_text(order.get("total_amount") or 0),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"Shopee order {sn}: missing or bad {exc}") from None
    paid = order.get("pay_time")
    if paid:
        row["paid_time"] = str(paid)
    elif row["status"] not in ("UNPAID", "CANCELLED"):
        row["paid_time"] = row["create_time"]  # cash on delivery
    return row, _raw(order)


def to_refund_row(shop_id: str, item: dict[str, Any]) -> tuple[Row, str]:
    """One return (get_return_list item) as a refunds row."""
    status = str(item.get("status", ""))
    if status not in RETURN_STATUSES:
        raise BadResponse(f"Shopee return {item.get('return_sn')}: unknown status {status!r}")
    try:
        row: Row = {
            "platform": "shopee",
            "shop_id": shop_id,
            "refund_id": str(item["return_sn"]),
            "order_id": str(item["order_sn"]),
            "status": RETURN_STATUSES[status],
            "currency": str(item["currency"]),
            "create_time": str(item["create_time"]),
            "update_time": str(item["update_time"]),
            "refund_amount": amount_text(item["refund_amount"]),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"Shopee return without {exc}") from None
    return row, _raw(item)
