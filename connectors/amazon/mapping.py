"""Amazon orders (Orders API 2026-01-01) and refund events (Finances v0) as our import rows."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from connectors.base import Row
from connectors.errors import BadResponse

# Amazon has no payment time: an order past PENDING is paid when it is placed (the charge
# itself happens at shipment). Amazon never reports delivery to the seller here.
FULFILLMENT_STATUSES = {
    "PENDING_AVAILABILITY": "UNPAID",
    "PENDING": "UNPAID",
    "UNSHIPPED": "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPED": "PARTIALLY_SHIPPING",
    "SHIPPED": "IN_TRANSIT",
    "CANCELLED": "CANCELLED",
    "UNFULFILLABLE": "ON_HOLD",
}


def amount_text(value: Any) -> str:
    """An SP-API amount (a decimal string, or a JSON number in Finances v0) as plain text."""
    return format(Decimal(str(value)).normalize(), "f")


def _raw(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def to_order_row(shop_id: str, order: dict[str, Any]) -> tuple[Row, str]:
    """One searchOrders order: sub_total = the items' ITEM proceeds (else unit price ×
    quantity while Amazon has not priced it yet), total_amount = proceeds.grandTotal."""
    ident = order.get("orderId", "?")
    status = str((order.get("fulfillment") or {}).get("fulfillmentStatus", ""))
    if status not in FULFILLMENT_STATUSES:
        raise BadResponse(f"Amazon order {ident}: unknown fulfillment status {status!r}")
    try:
        currency = ""
        sub_total = Decimal(0)
        for item in order.get("orderItems") or []:
            breakdowns = (item.get("proceeds") or {}).get("breakdowns") or []
            priced = [b["subtotal"] for b in breakdowns if b.get("type") == "ITEM"]
            if priced:
                sub_total += sum((Decimal(p["amount"]) for p in priced), Decimal(0))
                currency = currency or priced[0]["currencyCode"]
            else:
                unit = item["product"]["price"]["unitPrice"]
                sub_total += Decimal(unit["amount"]) * int(item["quantityOrdered"])
                currency = currency or unit["currencyCode"]
        grand = (order.get("proceeds") or {}).get("grandTotal")
        if grand is not None:
            currency = grand["currencyCode"]
        if not currency:
            raise BadResponse(f"Amazon order {ident}: no amounts at all")
        row: Row = {
            "platform": "amazon",
            "shop_id": shop_id,
            "order_id": str(order["orderId"]),
            "status": FULFILLMENT_STATUSES[status],
            "currency": currency,
            "create_time": str(order["createdTime"]),
            "update_time": str(order["lastUpdatedTime"]),
            "sub_total": amount_text(sub_total),
            "total_amount": amount_text(grand["amount"] if grand is not None else sub_total),
        }
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise BadResponse(f"Amazon order {ident}: missing or bad {exc}") from None
    if row["status"] not in ("UNPAID", "CANCELLED"):
        row["paid_time"] = row["create_time"]
    return row, _raw(order)


def to_refund_row(shop_id: str, event: dict[str, Any]) -> tuple[Row, str]:
    """One RefundEvent: the amount returned is minus the sum of its item charge adjustments."""
    ident = event.get("AmazonOrderId", "?")
    try:
        charges = [
            charge["ChargeAmount"]
            for item in event.get("ShipmentItemAdjustmentList") or []
            for charge in item.get("ItemChargeAdjustmentList") or []
        ]
        if not charges:
            raise BadResponse(f"Amazon refund for {ident}: no charge adjustments")
        total = -sum((Decimal(str(c["CurrencyAmount"])) for c in charges), Decimal(0))
        posted = str(event["PostedDate"])
        row: Row = {
            "platform": "amazon",
            "shop_id": shop_id,
            # Refund events have no id of their own: the order and the posting time are one.
            "refund_id": f"{event['AmazonOrderId']}@{posted}",
            "order_id": str(event["AmazonOrderId"]),
            "status": "COMPLETED",
            "currency": str(charges[0]["CurrencyCode"]),
            "create_time": posted,
            "update_time": posted,
            "refund_amount": amount_text(total),
        }
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise BadResponse(f"Amazon refund for {ident}: missing or bad {exc}") from None
    return row, _raw(event)
