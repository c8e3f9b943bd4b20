"""The languages kpibot speaks (a person's, team's or organisation's `language`)."""

from __future__ import annotations

from typing import Literal

Language = Literal["zh", "en", "ja"]
