"""What every platform's connector provides, and what a page of synced data looks like."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from connectors.tokens import Grant
from kpi_engine.organisation import ShopConfig

Row = dict[str, str]


@dataclass(frozen=True)
class Source:
    """A stream of one shop's data: which import kind it feeds and how it is windowed."""

    name: str  # orders, refunds
    kind: str  # the import kind (kpi_engine.ingest.formats.KINDS)
    max_window: int | None  # seconds per query (Shopee: 15 days), None: no limit
    overlap: int  # re-read this much before the high-water mark (late-indexed updates)
    end_margin: int  # a window ends this long before now (Amazon: at least 2 minutes)


@dataclass(frozen=True)
class Page:
    """One page of a window: rows in our import columns (with their raw platform JSON)."""

    rows: list[tuple[Row, str]]
    next_cursor: str | None  # None: the window is complete


class Connector(Protocol):
    """A platform: authorization, token refresh, and pages of each source by update time."""

    platform: str
    sources: dict[str, Source]

    def authorize_url(self, shop: ShopConfig, state: str, redirect_uri: str) -> str:
        """Where the seller grants us access to `shop`."""
        ...

    def exchange(
        self, shop: ShopConfig, code: str, params: Mapping[str, str], redirect_uri: str, now: int
    ) -> Grant:
        """Trade an authorization code (and the callback's other parameters) for tokens."""
        ...

    def refresh(self, grant: Grant, now: int) -> Grant:
        """A new access token (and, where the platform rotates it, a new refresh token)."""
        ...

    def fetch(
        self,
        shop: ShopConfig,
        grant: Grant,
        source: str,
        start: int,
        end: int,
        cursor: str | None,
    ) -> Page:
        """The page at `cursor` of `source` updated in [start, end)."""
        ...
