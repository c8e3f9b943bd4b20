"""Rendering replies as terminal text: tables aligned for Chinese and Latin characters alike,
progress bars, numbered buttons and the context line."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

from bot.chat.messages import Reply, Sent, Table, Target, displayable, width
from bot.i18n import texts


def _pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def render_table(table: Table) -> list[str]:
    """A table with aligned columns."""
    count = len(table.columns)
    rows = [tuple((list(row) + [""] * count)[:count]) for row in (table.columns, *table.rows)]
    widths = [max(width(row[i]) for row in rows) for i in range(count)]
    lines = [
        "  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("─" * w for w in widths))
    return lines


def render_text(reply: Reply, *, private: bool = False) -> str:
    """The reply as terminal text; the structured parts replace the plain text where present."""
    lines: list[str] = []
    if reply.mentions:
        lines.append(" ".join(f"@{m.name}" for m in reply.mentions))
    if private:
        lines.append("🔒 " + texts(reply.language)("render.private"))
    structured = reply.fields or reply.table or reply.progress
    if reply.headline and structured:
        lines.append(reply.headline)
        lines.append("─" * min(60, max(10, width(reply.headline))))
    if not structured:
        lines.append(reply.text)
    if reply.fields:
        label_width = max(width(f.label) for f in reply.fields)
        lines += [f"  {_pad(f.label, label_width)}  {f.value}" for f in reply.fields]
    for bar in reply.progress:
        finite = Decimal(bar.ratio).is_finite()
        filled = round(min(1.0, max(0.0, float(bar.ratio) if finite else 0.0)) * 20)
        shown = f"{bar.ratio * 100:.0f}%" if finite and abs(bar.ratio) < 10**7 else "—"
        lines.append(f"  [{'█' * filled}{'░' * (20 - filled)}] {shown}  {bar.caption}")
    if reply.table:
        lines += ["  " + line for line in render_table(reply.table)]
    if reply.chart:
        lines.append(f"  ({reply.chart.title}: {reply.chart.alt})")
    for number, button in enumerate(reply.buttons, start=1):
        lines.append(f"  [{number}] {button.label}")
    if reply.context:
        lines.append(f"  ({reply.context})")
    # Terminal escape sequences and other control characters in anybody's text are dropped.
    return displayable("\n".join(lines))


class ConsoleAdapter:
    """Writes replies to a terminal; remembers the last buttons so a number can press one."""

    platform = "console"
    private_in_place = True

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.sent: list[tuple[Reply, Target]] = []
        self._ids = itertools.count(1)

    def render(self, reply: Reply, target: Target) -> str:
        """The terminal text of `reply`."""
        return render_text(reply, private=target.private)

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        """Print the reply."""
        self.sent.append((reply, target))
        text = self.render(reply, target)
        self.write(text)
        return Sent(self.platform, target.channel, str(next(self._ids)), text)

    def update(self, sent: Sent, reply: Reply) -> Sent:
        """A terminal cannot change what it printed: print the new version."""
        text = render_text(reply)
        self.write(text)
        return Sent(self.platform, sent.channel, sent.message_id, text)
