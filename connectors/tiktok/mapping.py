"""TikTok Shop orders and returns as our import rows (docs/import-formats.md)."""

from __future__ import annotations

import json
from typing import Any

from connectors.base import Row
from connectors.errors import BadResponse

# Return statuses onto ours; replacements refund nothing and are left out.
RETURN_STATUSES = {
    "RETURN_OR_REFUND_REQUEST_PENDING": "REQUESTED",
    "AWAITING_BUYER_SHIP": "APPROVED",
    "BUYER_SHIPPED_ITEM": "APPROVED",
    "RECEIVE_REJECTED": "REJECTED",
    "REJECT_RECEIVE_PACKAGE": "REJECTED",
    "RETURN_OR_REFUND_REQUEST_SUCCESS": "APPROVED",
    "REFUND_OR_RETURN_REQUEST_REJECT": "REJECTED",
    "RETURN_OR_REFUND_REQUEST_REJECT": "REJECTED",
    "RETURN_OR_REFUND_REQUEST_CANCEL": "CANCELLED",
    "RETURN_OR_REFUND_REQUEST_COMPLETE": "COMPLETED",
}


def _raw(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def to_order_row(shop_id: str, order: dict[str, Any]) -> tuple[Row, str]:
    """One order (Get Order List item) as an orders row; amounts stay decimal strings."""
    try:
        payment = order["payment"]
        row: Row = {
            "platform": "tiktok",
            "shop_id": shop_id,
            "order_id": str(order["id"]),
            "status": str(order["status"]),
            "currency": str(payment["currency"]),
            "create_time": str(order["create_time"]),
            "update_time": str(order["update_time"]),
            "sub_total": str(payment["sub_total"]),
            "total_amount": str(payment["total_amount"]),
        }
    except (KeyError, TypeError) as exc:
        raise BadResponse(f"TikTok order without {exc}") from None
    if order.get("paid_time"):
        row["paid_time"] = str(order["paid_time"])
    if order.get("is_sample_order"):
        row["is_sample"] = "true"
    return row, _raw(order)


def to_refund_row(shop_id: str, item: dict[str, Any]) -> tuple[Row, str] | None:
    """One return (Search Returns item) as a refunds row; None for a replacement."""
    if item.get("return_type") == "REPLACEMENT":
        return None
    status = str(item.get("return_status", ""))
    if status not in RETURN_STATUSES:
        raise BadResponse(f"TikTok return {item.get('return_id')}: unknown status {status!r}")
    try:
        amount = item["refund_amount"]
        row: Row = {
            "platform": "tiktok",
            "shop_id": shop_id,
            "refund_id": str(item["return_id"]),
            "order_id": str(item["order_id"]),
            "status": RETURN_STATUSES[status],
            "currency": str(amount["currency"]),
            "create_time": str(item["create_time"]),
            "update_time": str(item["update_time"]),
            "refund_amount": str(amount["refund_total"]),
        }
    except (KeyError, TypeError) as exc:
        raise BadResponse(f"TikTok return without {exc}") from None
    return row, _raw(item)
