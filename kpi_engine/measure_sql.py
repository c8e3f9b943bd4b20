"""The SQL of the base measures, generated from their one definition in the catalogue.

Each base measure's entry (`kpi_engine.metrics.Measure`) names its table, the time column that
places a row in a day, its filter, the value it sums and how it is credited to people. Here
those entries become SQL, once, for two uses:

- **rollups** (`kpi_engine.rollups`): the measures read along the same table and time form an
  *axis*; one statement per axis and stretch sums them into rollup rows (`INSERT … SELECT`);
- **raw figures** (`kpi_engine.figures` for a zone without rollups, and `rollups=False`): the
  very same `SELECT`, over the period alone, read back and added up.

People's rows come from one attribution chain (`credits`): an order's `attributed_to`, else the
hosts of every live session of its shop covering its creation (from the session's start to its
end plus the tail, end excluded), else the shop's fallback-role people assigned that day when
no session covers it. Each credit row carries `shares`, the number of people the order is
credited to, so the reader can give each of them the whole order (`full`) or an equal part
(`split`). Live sessions count for their hosts with `shares` = the number of hosts. The hosts
of a session are split from `live_sessions.hosts` by SQL (`hosts_ctes`), both to fill the
`live_hosts` table the rollups join and inside a raw query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from kpi_engine.instants import day_bounds, zone
from kpi_engine.metrics import EFFECTIVE_LIVE_SECONDS, Catalogue, Credit, Measure
from kpi_engine.organisation import Organisation

DAY = 86400
V = ("v0", "v1", "v2", "v3", "v4", "v5")  # a rollup row's value columns
# A refund's order, alias `o`.
ORDER_OF_REFUND = "o.platform = t.platform AND o.shop_id = t.shop_id AND o.order_id = t.order_id"


@dataclass(frozen=True)
class Axis:
    """The measures read along one table and time: one rollup row holds all their sums."""

    name: str
    table: str
    time: str  # SQL: the instant that places a row in a day
    measures: tuple[str, ...]
    values: tuple[str, ...]  # SQL aggregates, one per measure, into v0, v1, …
    where: str  # the conditions every measure of the axis shares
    order_join: str  # "", "JOIN" or "LEFT JOIN": a refund's order as `o`
    credit: Credit
    money: bool  # rows carry a currency (`t.currency`)

    def value(self, measure: str) -> int:
        """The column index (v0, v1, …) that holds `measure`."""
        return self.measures.index(measure)


def axes(catalogue: Catalogue) -> dict[str, Axis]:
    """The rollup axes: base measures placed by an instant, grouped by table and time (at
    most six to an axis: a seventh starts `<name>#2`)."""
    groups: dict[tuple[str, str], list[tuple[str, Measure]]] = {}
    for key, measure in catalogue.measures().items():
        if not measure.by_day:
            groups.setdefault((measure.table, measure.time), []).append((key, measure))
    found: dict[str, Axis] = {}
    for (table, time), members in groups.items():
        base = f"{table}.{time.replace('t.', '', 1).replace('o.', 'order.', 1)}"
        for n in range(0, len(members), len(V)):
            chunk = members[n : n + len(V)]
            name = base if n == 0 else f"{base}#{n // len(V) + 1}"
            common = [c for c in chunk[0][1].where if all(c in m.where for _, m in chunk)]
            values = []
            for _, measure in chunk:
                extra = [c for c in measure.where if c not in common]
                values.append(
                    f"SUM(CASE WHEN {' AND '.join(extra)} THEN {measure.value} ELSE 0 END)"
                    if extra
                    else f"SUM({measure.value})"
                )
            credits = {m.credit for _, m in chunk}
            assert len(credits) == 1, f"measures of {name} are credited differently"
            join = ""
            if table == "refunds":  # inner when the row is placed by its order's time
                join = "JOIN" if time.startswith("o.") else "LEFT JOIN"
            found[name] = Axis(
                name,
                table,
                time,
                tuple(k for k, _ in chunk),
                tuple(values),
                " AND ".join(common) or "1 = 1",
                join,
                credits.pop(),
                table in ("orders", "refunds"),
            )
    return found


def layout(catalogue: Catalogue) -> str:
    """The axes as text: part of the rollups' fingerprint, so a changed definition rebuilds."""
    return json.dumps(
        [
            [a.name, a.table, a.time, a.measures, a.values, a.where, a.order_join]
            for a in axes(catalogue).values()
        ]
    )


# -- where people's rows come from -----------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Where people's rows read attribution from: the rollups' scratch tables, or the common
    table expressions of a raw query."""

    credits: str = "rollup_credits"
    hosts: str = "live_hosts"
    zones: str = "rollup_zones"


TABLES = Sources()
CTES = Sources("credits", "hosts", "zones")


def credit_windows(org: Organisation) -> list[dict[str, Any]]:
    """Assignment windows of fallback-role people, as instants in each shop's zone."""
    roles = org.settings.attribution.fallback_roles
    windows = []
    for assignment in org.assignments:
        person = org.people.get(assignment.person)
        if person is None or person.role not in roles:
            continue
        tz = zone(org.shops[assignment.shop].timezone)
        end = 2**62 if assignment.valid_to is None else day_bounds(assignment.valid_to, tz)[1]
        windows.append(
            {
                "person": assignment.person,
                "shop_id": assignment.shop,
                "start_time": day_bounds(assignment.valid_from, tz)[0],
                "end_time": end,
            }
        )
    return windows


def hosts_ctes(dialect: str, where: str) -> str:
    """`split` and `hosts` (session, person, platform, shop_id, start_time, end_time, shares):
    the distinct hosts of the live sessions meeting `where` (alias-free columns of
    `live_sessions`), each with the number of hosts of their session."""
    position = "instr" if dialect == "sqlite" else "strpos"
    return (
        "split(session, person, rest) AS ("
        "SELECT id, CAST('' AS TEXT), CAST(hosts || ',' AS TEXT) FROM live_sessions "
        f"WHERE {where} UNION ALL "
        f"SELECT session, CAST(SUBSTR(rest, 1, {position}(rest, ',') - 1) AS TEXT), "
        f"CAST(SUBSTR(rest, {position}(rest, ',') + 1) AS TEXT) FROM split WHERE rest <> ''), "
        "hosts AS (SELECT x.session, x.person, l.platform, l.shop_id, l.start_time, "
        "l.end_time, COUNT(*) OVER (PARTITION BY x.session) AS shares FROM "
        "(SELECT DISTINCT session, person FROM split WHERE person <> '') x "
        "JOIN live_sessions l ON l.id = x.session)"
    )


def credits_ctes(
    start: int, end: int, tail: int, reach: int, hosts: str, windows: str
) -> tuple[str, str]:
    """`base`, then `chain` and `credits` (order_pk, person, shares): who is credited with every
    order of :shops created, paid or refunded in [start, end) — the attribution chain of
    docs/metrics.md. `hosts` and `windows` name the sessions' hosts and the fallback-role
    windows (tables or CTEs); no session covers an order created later than `reach` after it
    starts."""
    covering = (
        "{l}.platform = b.platform AND {l}.shop_id = b.shop_id "
        "AND {l}.start_time <= b.create_time AND {l}.start_time > b.create_time - "
        f"{reach} AND b.create_time < {{l}}.end_time + {tail}"
    )
    order = "o.id AS unit, o.platform, o.shop_id, o.create_time, o.attributed_to"
    base = (
        f"SELECT {order} FROM orders o WHERE o.shop_id IN :shops "
        f"AND o.create_time >= {start} AND o.create_time < {end} "
        f"UNION SELECT {order} FROM orders o WHERE o.shop_id IN :shops "
        f"AND o.paid_time >= {start} AND o.paid_time < {end} "
        f"UNION SELECT {order} FROM refunds r JOIN orders o ON o.platform = r.platform "
        "AND o.shop_id = r.shop_id AND o.order_id = r.order_id "
        f"WHERE r.shop_id IN :shops AND r.update_time >= {start} AND r.update_time < {end}"
    )
    chain = (
        "SELECT unit, attributed_to AS person FROM base WHERE attributed_to IS NOT NULL "
        "UNION SELECT b.unit, h.person FROM base b "
        f"JOIN {hosts} h ON {covering.format(l='h')} WHERE b.attributed_to IS NULL "
        f"UNION SELECT b.unit, w.person FROM base b JOIN {windows} w "
        "ON w.shop_id = b.shop_id AND b.create_time >= w.start_time "
        "AND b.create_time < w.end_time WHERE b.attributed_to IS NULL AND NOT EXISTS "
        f"(SELECT 1 FROM live_sessions l WHERE {covering.format(l='l')})"
    )
    return f"base AS ({base})", (
        f"chain AS ({chain}), credits AS MATERIALIZED ("
        "SELECT unit AS order_pk, person, COUNT(*) OVER (PARTITION BY unit) AS shares "
        "FROM chain)"
    )


def values_cte(name: str, columns: Sequence[str], rows: Iterable[Sequence[str | int]]) -> str:
    """A common table expression of literal rows (strings from the checked configuration);
    a column `name:TYPE` says its SQL type, for when there are no rows (TEXT otherwise)."""
    names = [c.partition(":")[0] for c in columns]
    literal = [
        "(" + ", ".join(str(v) if isinstance(v, int) else quote(v) for v in row) + ")"
        for row in rows
    ]
    if literal:
        return f"{name}({', '.join(names)}) AS (VALUES {', '.join(literal)})"
    nulls = ", ".join(
        f"CAST(NULL AS {c.partition(':')[2] or 'TEXT'}) AS {n}"
        for c, n in zip(columns, names, strict=True)
    )
    return f"{name} AS (SELECT {nulls} WHERE 1 = 0)"


# -- one stretch of one axis -----------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch [a, b) of one axis in which the UTC offsets of the zones and the shops' own
    are fixed, so a row's local day is `(instant + offset) / 86400`.

    `windows` are the zones rows are summed for, with the whole local days wanted in each: a
    row counts for a zone only inside that zone's window. One zone for shops' totals
    (`:zone`); for people's rows every people's zone, each person's read from `zones`.
    `effective_live_seconds` is the configured shortest live that counts for effective live
    duration, written into that measure's condition.
    """

    axis: Axis
    a: int
    b: int
    windows: Mapping[str, tuple[int, int]]
    offsets: Mapping[str, int]
    shop_zone: str
    sources: Sources = TABLES
    effective_live_seconds: int = 0  # organisation.effective_live_minutes × 60

    def _by_zone(self, values: Mapping[str, int]) -> str:
        if len(self.windows) == 1:
            return str(values[next(iter(self.windows))])
        branches = " ".join(f"WHEN {quote(z)} THEN {values[z]}" for z in self.windows)
        return f"CASE z.zone {branches} END"

    def _select(self, owner: str, source: str, where: str, group: str, shares: str) -> str:
        axis = self.axis
        time = axis.time
        offset = self._by_zone({z: self.offsets[z] for z in self.windows})
        day = f"({time} + {offset}) / {DAY}"
        fx_day = f"({time} + {self.offsets[self.shop_zone]}) / {DAY}"
        zone_of_row = "z.zone" if "z.zone" in group else ":zone"  # people's rows join `z`
        first = self._by_zone({z: max(self.a, w[0]) for z, w in self.windows.items()})
        end = self._by_zone({z: min(self.b, w[1]) for z, w in self.windows.items()})
        currency = "t.currency" if axis.money else "''"
        values = list(axis.values) + ["0"] * (len(V) - len(axis.values))
        columns = ", ".join(f"{v} AS {name}" for v, name in zip(values, V, strict=True))
        grouped_shares = f", {shares}" if group else ""  # shops' rows: shares is always 1
        sql = (
            f"SELECT {zone_of_row} AS zone, '{axis.name}' AS axis, {owner} AS owner, "
            f"t.shop_id AS shop_id, {day} AS day, {fx_day} AS fx_day, {currency} AS currency, "
            f"{shares} AS shares, {columns} FROM {source} WHERE {where} "
            f"AND {time} >= {self.a} AND {time} < {self.b} AND {axis.where} "
            f"AND {time} >= {first} AND {time} < {end} "
            f"GROUP BY {group}t.shop_id, {day}, {fx_day}"
            f"{', t.currency' if axis.money else ''}{grouped_shares}"
        )
        return sql.replace(EFFECTIVE_LIVE_SECONDS, str(self.effective_live_seconds))

    def shop_rows(self) -> str:
        """The shops' own totals (`:shops`, summed for `:zone`)."""
        source = f"{self.axis.table} t"
        if self.axis.order_join:
            source += f" {self.axis.order_join} orders o ON {ORDER_OF_REFUND}"
        return self._select("''", source, "t.shop_id IN :shops", "", "1")

    def person_rows(self) -> str:
        """Each credited person's rows (in their zone from `zones`)."""
        axis, s = self.axis, self.sources
        if axis.credit == "hosts":  # sessions count for their hosts
            source = (
                f"{axis.table} t JOIN {s.hosts} h ON h.session = t.id "
                f"JOIN {s.zones} z ON z.kind = 'person' AND z.id = h.person"
            )
            return self._select(
                "h.person", source, "t.shop_id IN :shops", "h.person, z.zone, ", "h.shares"
            )
        # Orders count for the people credited with them; refunds as their order does. CROSS
        # JOIN with the conditions in WHERE: SQLite then joins in the order written (the rows
        # of the stretch first, each probing its credits by key), PostgreSQL as it sees fit.
        credited = (
            "c.order_pk = {o}.id AND z.kind = 'person' AND z.id = c.person "
            "AND {o}.shop_id IN :shops"
        )
        tables = f"{s.credits} c CROSS JOIN {s.zones} z"
        if s.credits != TABLES.credits and axis.table == "orders":
            # Credits as a common table expression have no index: read them first, each
            # probing its order by key.
            source = f"{s.credits} c CROSS JOIN orders t CROSS JOIN {s.zones} z"
            where = credited.format(o="t")
        elif axis.table == "orders":
            source, where = f"orders t CROSS JOIN {tables}", credited.format(o="t")
        else:
            # Refunds of the stretch first, or, for the cohort view, the orders paid in it.
            first = (
                "orders o CROSS JOIN refunds t"
                if axis.time.startswith("o.")
                else "refunds t CROSS JOIN orders o"
            )
            source = f"{first} CROSS JOIN {tables}"
            where = f"{ORDER_OF_REFUND} AND {credited.format(o='o')}"
        return self._select("c.person", source, where, "c.person, z.zone, ", "c.shares")


def offset(tz: Any, instant: int) -> int:
    """The UTC offset of a zone at an instant, in seconds."""
    found = datetime.fromtimestamp(instant, tz).utcoffset()
    assert found is not None  # a ZoneInfo always has an offset
    return int(found.total_seconds())


def _changes(name: str, lo: int, hi: int) -> list[int]:
    """Instants in (lo, hi) where the zone's UTC offset changes."""
    tz = zone(name)
    changes = []
    t = lo
    while t < hi:
        step = min(t + DAY, hi)
        if offset(tz, step) != offset(tz, t):
            a, b = t, step  # offset(a) differs from offset(b): find the first changed second
            while b - a > 1:
                middle = (a + b) // 2
                a, b = (middle, b) if offset(tz, middle) == offset(tz, t) else (a, middle)
            if b < hi:
                changes.append(b)
        t = step
    return changes


def segments(zones: list[str], lo: int, hi: int) -> list[tuple[int, int, dict[str, int]]]:
    """[a, b) stretches of [lo, hi) in which every zone's UTC offset is fixed, with them."""
    cuts = sorted({lo, hi}.union(*(_changes(z, lo, hi) for z in zones)))
    return [(a, b, {z: offset(zone(z), a) for z in zones}) for a, b in pairwise(cuts)]


def quote(value: str) -> str:
    """A SQL string literal (ids and zone names come from the checked configuration)."""
    return "'" + value.replace("'", "''") + "'"
