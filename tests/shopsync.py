"""Shared set-up for the connector tests: an organisation with a shop on each platform, and a
sync service on a virtual clock."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine, func, select

from connectors.base import Connector
from connectors.clock import VirtualClock
from connectors.sync import SyncService
from connectors.tokens import ConnectionStore, TokenCipher
from kpi_engine.models import Order, Refund
from kpi_engine.organisation import Organisation, load_organisation
from tests.conftest import EXAMPLE_CONFIG

SECRET = "test-secret-key-for-kpibot-tokens"
# 2026-11-30 12:00 UTC: pinned, never the real date.
NOW = 1796040000

SHOPEE_SHOP = """
  - id: shp-sg-01
    name: Shopee SG — Glow Beauty
    platform: shopee
    region: SG
    timezone: Asia/Singapore
    currency: SGD
    team: sz-live
"""


def shop_config(directory: Path) -> Path:
    """The example configuration plus a Shopee shop."""
    target = directory / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    shops = target / "shops.yaml"
    text = shops.read_text(encoding="utf-8")
    head, _, tail = text.partition("\n# Who works")
    shops.write_text(
        head.rstrip("\n") + "\n" + SHOPEE_SHOP + "\n# Who works" + tail, encoding="utf-8"
    )
    return target


def shop_organisation(directory: Path) -> Organisation:
    return load_organisation(shop_config(directory))


class Notices:
    """Records the revoked-authorization notices the sync service raises."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, int]] = []

    def __call__(self, shop: str, platform: str, reason: str, now: int) -> None:
        self.sent.append((shop, platform, reason, now))


def build_sync(
    engine: Engine,
    organisation: Organisation,
    connectors: Mapping[str, Connector],
    clock: VirtualClock,
    notices: Notices | None = None,
) -> SyncService:
    store = ConnectionStore(engine, TokenCipher(SECRET))
    return SyncService(
        engine, organisation, connectors, store, clock, on_revoked=notices, owner="test"
    )


def count(engine: Engine, table: type, shop_id: str) -> int:
    columns = table.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(columns.shop_id == shop_id)).scalar() or 0
        )


def orders(engine: Engine, shop_id: str) -> int:
    return count(engine, Order, shop_id)


def refunds(engine: Engine, shop_id: str) -> int:
    return count(engine, Refund, shop_id)
