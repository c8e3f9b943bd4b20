"""Incremental rollups: daily sums per owner, shop and time zone, kept equal to the raw rows.

The hot figures (a person's today, a team's month-to-date ranking, a morning digest round) read
a few hundred rollup rows instead of millions of orders. A rollup row holds the sums of one
*axis* — the base measures read along one table and time (orders by created time, orders by
paid time, refunds by refund time, refunds by their order's paid time, live sessions by start
time), generated from their catalogue entries by `kpi_engine.measure_sql` — for one owner (a
person credited under the attribution rules, or "" for the shop's own total), one shop, one
local day in one zone, one FX date (the shop's local day), one currency and one `shares` (how
many people the rows' orders are credited to). Periods are whole local days, so a period in a
kept zone is a range of `day`s.

Zones kept: a shop's totals in its own zone, its team's and the company's; a person's rows in
their team's zone. A figure in any other zone is computed from the raw rows (see `Figures`).

Maintenance is incremental: the importer marks the hours of every row it writes (old and new
values; for a refund, also its order) in `rollup_dirty`, in the import's own
transaction. `refresh` claims those marks,
widens them to whole local days and recomputes exactly those days from the raw rows. Marks
with `credit` (orders created, live sessions' attribution windows) also make the paid hours
and refund hours of the orders created then stale, since they may now be credited to someone
else. A change of the configuration that attribution or zones depend on (its fingerprint)
rebuilds everything. `verify` rebuilds in a transaction it rolls back and compares.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import OperationalError

from kpi_engine.instants import day_bounds, local_date, zone
from kpi_engine.measure_sql import (
    TABLES,
    Axis,
    Segment,
    V,
    axes,
    credit_windows,
    credits_ctes,
    hosts_ctes,
    layout,
    segments,
)
from kpi_engine.metrics import build_catalogue
from kpi_engine.models import (
    LiveHost,
    LiveSession,
    Rollup,
    RollupCredit,
    RollupCreditWindow,
    RollupDirty,
    RollupState,
    RollupZone,
)
from kpi_engine.organisation import Organisation

# Bump when what a rollup row means changes: stored rollups are then rebuilt. (A change of a
# base measure's definition rebuilds them by itself: the axes are part of the fingerprint.)
ROLLUP_VERSION = 2
HOUR = 3600
DAY = 86400
EPOCH = date(1970, 1, 1)
_MERGE_GAP_HOURS = 48  # dirty ranges closer than this are recomputed together
# Longer stretches are recomputed a week at a time: each statement's attribution then fits in
# memory (PostgreSQL's hash over a year of orders spilled to disk and never finished).
_CHUNK = 7 * 24 * HOUR

_ROLLUPS = Rollup.__table__  # type: ignore[attr-defined]
_DIRTY = RollupDirty.__table__  # type: ignore[attr-defined]
_STATE = RollupState.__table__  # type: ignore[attr-defined]
_ZONES = RollupZone.__table__  # type: ignore[attr-defined]
_WINDOWS = RollupCreditWindow.__table__  # type: ignore[attr-defined]
_HOSTS = LiveHost.__table__  # type: ignore[attr-defined]
_LIVES = LiveSession.__table__  # type: ignore[attr-defined]
_CREDITS = RollupCredit.__table__  # type: ignore[attr-defined]


# The rollup axes: the base measures placed by an instant, from their one definition in the
# catalogue (`kpi_engine.measure_sql`). Custom metrics are formulas: they add no measures.
AXES: dict[str, Axis] = axes(build_catalogue())
# The instant columns rows are placed by, for the extent of a full rebuild.
_INSTANTS = (
    ("orders", "create_time"),
    ("orders", "paid_time"),
    ("refunds", "update_time"),
    ("live_sessions", "start_time"),
)
# Base measure → the axis that holds it.
AXIS_OF: dict[str, Axis] = {m: axis for axis in AXES.values() for m in axis.measures}


# -- what the configuration decides --------------------------------------------------------


def company_zone(org: Organisation) -> str:
    """The zone company-wide figures are read in: `organisation.timezone`, else the first
    team's."""
    return org.settings.timezone or next(iter(org.teams.values())).timezone


def shop_zones(org: Organisation) -> dict[str, frozenset[str]]:
    """The zones each shop's totals are kept in: its own, its team's and the company's."""
    company = company_zone(org)
    return {
        shop.id: frozenset(
            {shop.timezone, company}
            | ({org.teams[shop.team].timezone} if shop.team is not None else set())
        )
        for shop in org.shops.values()
    }


def person_zones(org: Organisation) -> dict[str, str]:
    """The zone each person's rows are kept in: their team's (a person's today is theirs)."""
    return {person.id: org.teams[person.team].timezone for person in org.people.values()}


def fingerprint(org: Organisation) -> str:
    """A digest of everything stored rollups depend on in the configuration."""
    state = {
        "version": ROLLUP_VERSION,
        "shops": sorted(shop_zones(org).items()),
        "shop_zones": sorted((s.id, s.timezone) for s in org.shops.values()),
        "people": sorted(person_zones(org).items()),
        "windows": sorted(json.dumps(w, sort_keys=True) for w in credit_windows(org)),
        "tail": org.settings.attribution.live_tail_minutes,
        "effective_live_minutes": org.settings.effective_live_minutes,
        "axes": layout(build_catalogue()),
    }
    blob = json.dumps(state, sort_keys=True, default=sorted)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- marks written by the importer -----------------------------------------------------------


# (shop id, hour since the epoch, credit), or (shop id, order id, False): that order's paid
# hour is stale.
Mark = tuple[str, int | str, bool]


def marker(
    kind: str, columns: Sequence[str], tail_minutes: int
) -> Callable[[tuple[Any, ...]], Iterable[Mark]] | None:
    """A function giving the rollup hours a stored row of `kind` affects (None: no rollup)."""
    position = {name: i for i, name in enumerate(columns)}
    if kind not in ("orders", "refunds", "live_sessions"):
        return None
    shop = position["shop_id"]
    if kind == "orders":
        created, paid = position["create_time"], position["paid_time"]

        def order_marks(values: tuple[Any, ...]) -> Iterable[Mark]:
            marks = [(values[shop], values[created] // HOUR, True)]
            if values[paid] is not None:
                marks.append((values[shop], values[paid] // HOUR, False))
            return marks

        return order_marks
    if kind == "refunds":
        updated, order = position["update_time"], position["order_id"]
        return lambda values: (
            (values[shop], values[updated] // HOUR, False),
            (values[shop], values[order], False),
        )
    if kind == "live_sessions":
        start, end, tail = position["start_time"], position["end_time"], tail_minutes * 60

        def live_marks(values: tuple[Any, ...]) -> Iterable[Mark]:
            first, last = values[start] // HOUR, (values[end] + tail) // HOUR
            return [(values[shop], hour, True) for hour in range(first, last + 1)]

        return live_marks
    return None


class Marks:
    """The marks of one import, kept as runs of hours so a year of rows stays small."""

    def __init__(self) -> None:
        self._hours: dict[tuple[str, bool], set[int]] = defaultdict(set)
        self._runs: dict[tuple[str, bool], list[tuple[int, int]]] = {}
        self._orders: set[tuple[str, str]] = set()

    def update(self, marks: Iterable[Mark]) -> None:
        """Add marks."""
        for shop, where, credit in marks:
            if isinstance(where, str):
                self._orders.add((shop, where))
            else:
                self._hours[(shop, credit)].add(where)

    def fold(self, *, above: int = 0) -> None:
        """Merge the hours added since the last fold into runs, once there are over `above`."""
        if sum(len(hours) for hours in self._hours.values()) <= above:
            return
        for key, hours in self._hours.items():
            # Hours less than a day apart share a run: the refresh recomputes whole days anyway,
            # and a shop's quiet night hours would otherwise split every day into runs.
            runs = list(_runs(hours, gap=24))
            self._runs[key] = _union(self._runs.get(key, []), runs)
        self._hours.clear()

    def write(self, conn: Connection) -> None:
        """Store the marks in `rollup_dirty`, in the caller's transaction."""
        self.fold()
        rows: list[dict[str, Any]] = [
            {"shop_id": shop, "first_hour": 0, "end_hour": 0, "credit": False, "order_id": order}
            for shop, order in sorted(self._orders)
        ]
        rows += [
            {"shop_id": shop, "first_hour": a, "end_hour": b, "credit": credit, "order_id": None}
            for (shop, credit), runs in self._runs.items()
            for a, b in runs
        ]
        if rows:
            conn.execute(insert(_DIRTY), rows)


def _union(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of two lists of [first, end) runs, as sorted runs that neither touch nor
    overlap."""
    merged: list[tuple[int, int]] = []
    for first, end in sorted(a + b):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((first, end))
    return merged


def _runs(hours: Iterable[int], *, gap: int) -> Iterator[tuple[int, int]]:
    """[first, end) runs of sorted hours, joining runs less than `gap` hours apart."""
    first = end = None
    for hour in sorted(set(hours)):
        if end is not None and hour < end - 1 + gap:
            end = max(end, hour + 1)
            continue
        if first is not None and end is not None:
            yield first, end
        first, end = hour, hour + 1
    if first is not None and end is not None:
        yield first, end


# -- refresh ---------------------------------------------------------------------------------


class Rollups:
    """The rollups of one organisation's database: keep them current, read them, check them."""

    def __init__(self, engine: Engine, organisation: Organisation) -> None:
        self.engine = engine
        self.organisation = organisation
        self.fingerprint = fingerprint(organisation)
        self.shop_zones = shop_zones(organisation)
        self.person_zones = person_zones(organisation)

    def is_current(self, conn: Connection) -> bool:
        """True when the stored rollups match the configuration and no import made them stale."""
        # One round trip: the configuration the rollups were built for, and any stale marks.
        found = conn.execute(
            select(_STATE.c.fingerprint, exists(select(_DIRTY.c.id)).label("dirty")).where(
                _STATE.c.id == 1
            )
        ).first()
        return found is not None and found[0] == self.fingerprint and not found[1]

    def ensure_current(self, *, now: int) -> bool:
        """Refresh the rollups when they are stale; True when anything was recomputed."""
        with self.engine.connect() as conn:
            if self.is_current(conn):
                return False
        with self.engine.begin() as conn:
            return refresh(conn, self.organisation, now=now, expected=self.fingerprint)

    def try_current(self, *, now: int) -> bool:
        """As `ensure_current` for a reader: True once the rollups are current; False when
        another process has been refreshing them (a full rebuild, a long import's refresh) for
        longer than `BUSY_WAIT_MS` — the reader then computes from the raw rows, which give the
        same figures, instead of waiting for it. (SQLite has one writer: there it waits.)"""
        with self.engine.connect() as conn:
            if self.is_current(conn):
                return True
        try:
            with self.engine.begin() as conn:
                refresh(conn, self.organisation, now=now, expected=self.fingerprint, wait=False)
        except RefreshBusy:
            return False
        return True

    def verify(self, *, now: int) -> list[Mismatch]:
        """Compare the stored rollups with a full recomputation (which is then rolled back)."""
        self.ensure_current(now=now)
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                stored = _snapshot(conn)
                rebuild(conn, self.organisation)
                computed = _snapshot(conn)
            finally:
                transaction.rollback()
        keys = sorted(set(stored) | set(computed), key=repr)
        return [
            Mismatch(key, stored.get(key), computed.get(key))
            for key in keys
            if stored.get(key) != computed.get(key)
        ]

    def covers(self, kind: str, ids: Iterable[str], zone_name: str) -> bool:
        """True when rollups of these people (or shops' totals) are kept in `zone_name`."""
        if kind == "person":
            return all(self.person_zones.get(i) == zone_name for i in ids)
        return all(zone_name in self.shop_zones.get(i, ()) for i in ids)


class RefreshBusy(Exception):
    """Another process is bringing the rollups up to date (`refresh(wait=False)`)."""


# How long a reader waits for another process's refresh before reading the raw rows instead:
# an import's usual refresh ends within it; a full rebuild of a year does not.
BUSY_WAIT_MS = 2000
_REFRESH_LOCK = 7312001  # PostgreSQL advisory lock: one refresher at a time across replicas


def refresh(
    conn: Connection,
    org: Organisation,
    *,
    now: int,
    expected: str | None = None,
    wait: bool = True,
) -> bool:
    """Bring the rollups up to date inside the caller's transaction; True if work was done.
    With `wait=False`, raise `RefreshBusy` (the transaction is then aborted) when another
    process has held the refresh for `BUSY_WAIT_MS` (PostgreSQL)."""
    if conn.dialect.name == "postgresql":  # one refresher at a time across replicas
        if wait:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_REFRESH_LOCK})"))
        else:
            before = conn.execute(text("SHOW lock_timeout")).scalar()
            conn.execute(text(f"SET LOCAL lock_timeout = {BUSY_WAIT_MS}"))
            try:
                conn.execute(text(f"SELECT pg_advisory_xact_lock({_REFRESH_LOCK})"))
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                    raise RefreshBusy from exc
                raise
            conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": before})
        # Attribution deduplicates every order of the stretch: keep that hash in memory.
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
    else:
        # SQLite: write first, so this transaction holds the write lock before it reads what
        # is stale (a reader that writes later fails on a changed snapshot). The empty mark is
        # claimed below like any other and matches no shop.
        conn.execute(insert(_DIRTY).values(shop_id="", first_hour=0, end_hour=0, credit=False))
    expected = expected or fingerprint(org)
    state = conn.execute(select(_STATE.c.fingerprint).where(_STATE.c.id == 1)).scalar()
    if state != expected:
        rebuild(conn, org)
        if conn.dialect.name == "postgresql":
            # Every row is new: without fresh statistics the planner reads a person's month by
            # scanning the zone and axis (230 ms instead of 7 at 10M orders) until autovacuum
            # gets to it.
            conn.execute(text("ANALYZE rollups"))
        conn.execute(delete(_STATE))
        conn.execute(insert(_STATE).values(id=1, fingerprint=expected, built_at=now))
        return True
    claimed = conn.execute(
        delete(_DIRTY).returning(
            _DIRTY.c.shop_id,
            _DIRTY.c.first_hour,
            _DIRTY.c.end_hour,
            _DIRTY.c.credit,
            _DIRTY.c.order_id,
        )
    ).all()
    claimed = [mark for mark in claimed if mark[0]]  # not the empty lock mark
    if not claimed:
        return False
    hours: dict[str, set[int]] = defaultdict(set)
    credit: dict[str, list[tuple[int, int]]] = defaultdict(list)
    orders: dict[str, set[str]] = defaultdict(set)
    for shop, first, end, is_credit, order_id in claimed:
        if order_id is not None:
            orders[shop].add(order_id)
            continue
        hours[shop].update(range(first, end))
        if is_credit:
            credit[shop].append((first, end))
    for found in (_credited_hours(conn, credit), _paid_hours(conn, orders)):
        for shop, extra in found.items():
            hours[shop].update(extra)
    # Stretches of stale hours across all shops, each recomputed for every shop stale in it:
    # one statement serves many shops (an import usually touches them all at the same hours).
    runs = list(
        _runs((h for shop_hours in hours.values() for h in shop_hours), gap=_MERGE_GAP_HOURS)
    )
    ranges: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for shop, shop_hours in hours.items():
        if shop in org.shops:
            ranges[shop] = [
                (a * HOUR, b * HOUR) for a, b in runs if any(a <= h < b for h in shop_hours)
            ]
    _recompute(conn, org, ranges)
    conn.execute(_STATE.update().where(_STATE.c.id == 1).values(built_at=now))
    return True


def rebuild(conn: Connection, org: Organisation) -> None:
    """Recompute every rollup from the raw rows (after a configuration change)."""
    for table in (_ROLLUPS, _DIRTY, _ZONES, _WINDOWS, _HOSTS):
        conn.execute(delete(table))
    zones = [
        {"kind": "shop", "id": shop, "zone": z}
        for shop, kept in shop_zones(org).items()
        for z in sorted(kept)
    ]
    zones += [{"kind": "person", "id": p, "zone": z} for p, z in person_zones(org).items()]
    if zones:
        conn.execute(insert(_ZONES), zones)
    windows = credit_windows(org)
    if windows:
        conn.execute(insert(_WINDOWS), windows)
    bounds = [
        conn.execute(text(f"SELECT MIN({column}), MAX({column}) FROM {table}")).one()
        for table, column in _INSTANTS
    ]
    lows = [low for low, _ in bounds if low is not None]
    highs = [high for _, high in bounds if high is not None]
    if not lows:
        return
    whole = (int(min(lows)), int(max(highs)) + 1)
    if conn.dialect.name == "postgresql":
        # Freshly imported tables may not have been analysed yet: without statistics the
        # planner probes live sessions through their unique index (every session of the shop
        # for each order) and takes a week of orders for a thousand rows.
        conn.execute(text("ANALYZE orders, refunds, live_sessions"))
    _recompute(conn, org, {shop: [whole] for shop in org.shops})


def _credited_hours(
    conn: Connection, credit: Mapping[str, list[tuple[int, int]]]
) -> dict[str, set[int]]:
    """Paid hours and refund hours of the orders created in the credit-marked hours."""
    found: dict[str, set[int]] = defaultdict(set)
    paid = text(
        "SELECT DISTINCT paid_time / 3600 FROM orders WHERE shop_id = :shop "
        "AND create_time >= :lo AND create_time < :hi AND paid_time IS NOT NULL"
    )
    refunded = text(
        "SELECT DISTINCT r.update_time / 3600 FROM orders o JOIN refunds r "
        "ON r.platform = o.platform AND r.shop_id = o.shop_id AND r.order_id = o.order_id "
        "WHERE o.shop_id = :shop AND o.create_time >= :lo AND o.create_time < :hi"
    )
    for shop, spans in credit.items():
        for first, end in _runs((h for a, b in spans for h in range(a, b)), gap=1):
            params = {"shop": shop, "lo": first * HOUR, "hi": end * HOUR}
            for query in (paid, refunded):
                found[shop].update(int(h) for (h,) in conn.execute(query, params))
    return found


def _paid_hours(conn: Connection, orders: Mapping[str, set[str]]) -> dict[str, set[int]]:
    """The paid hours of these orders (by shop): where their refunds' cohort sums lie."""
    query = text(
        "SELECT DISTINCT paid_time / 3600 FROM orders WHERE shop_id = :shop "
        "AND order_id IN :ids AND paid_time IS NOT NULL"
    ).bindparams(bindparam("ids", expanding=True))
    found: dict[str, set[int]] = defaultdict(set)
    for shop, ids in orders.items():
        ordered = sorted(ids)
        for n in range(0, len(ordered), 1000):
            params = {"shop": shop, "ids": ordered[n : n + 1000]}
            found[shop].update(int(h) for (h,) in conn.execute(query, params))
    return found


def _recompute(
    conn: Connection, org: Organisation, ranges: Mapping[str, list[tuple[int, int]]]
) -> None:
    """Delete and recompute every rollup day that meets `ranges` (instants, per shop)."""
    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for shop, spans in ranges.items():
        for lo, hi in spans:
            for start in range(lo, hi, _CHUNK):
                groups[start, min(start + _CHUNK, hi)].append(shop)
    kept = shop_zones(org)
    people_zones = set(person_zones(org).values())
    all_zones = sorted(people_zones.union(*kept.values()))
    span_max = conn.execute(select(text("MAX(end_time - start_time)")).select_from(_LIVES)).scalar()
    tail = org.settings.attribution.live_tail_minutes * 60
    effective = org.settings.effective_live_minutes * 60
    reach = int(span_max or 0) + tail  # no session covers an order created later than this
    for (lo, hi), shops in groups.items():
        _refresh_hosts(conn, shops, lo, hi)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # Tables rewritten in this transaction have no statistics yet; without them the
        # planner takes rollup_zones for one row and loops over every refund for each person.
        conn.execute(text("ANALYZE live_hosts, rollup_zones, rollup_credit_windows"))
    for (lo, hi), shops in groups.items():
        windows: dict[str, tuple[int, int]] = {}  # each zone's whole days around [lo, hi)
        for z in all_zones:
            tz = zone(z)
            first, last = local_date(lo, tz), local_date(hi - 1, tz)
            conn.execute(
                delete(_ROLLUPS).where(
                    _ROLLUPS.c.zone == z,
                    _ROLLUPS.c.shop_id.in_(shops),
                    _ROLLUPS.c.day >= epoch_day(first),
                    _ROLLUPS.c.day <= epoch_day(last),
                )
            )
            windows[z] = day_bounds(first, tz)[0], day_bounds(last, tz)[1]
        by_shop_zone: dict[str, list[str]] = defaultdict(list)
        for shop in shops:
            by_shop_zone[org.shops[shop].timezone].append(shop)
        for shop_tz, members in sorted(by_shop_zone.items()):
            for z in all_zones:  # the shops' own totals, zone by zone
                totals = [s for s in members if z in kept[s]]
                if not totals:
                    continue
                for a, b, offsets in segments([z, shop_tz], *windows[z]):
                    for axis in AXES.values():
                        segment = Segment(
                            axis,
                            a,
                            b,
                            {z: windows[z]},
                            offsets,
                            shop_tz,
                            effective_live_seconds=effective,
                        )
                        conn.execute(_insert(segment.shop_rows()), {"zone": z, "shops": totals})
            if not people_zones:
                continue
            # People's rows for every zone at once; each order's credit is worked out once.
            start = min(windows[z][0] for z in people_zones)
            end = max(windows[z][1] for z in people_zones)
            # TRUNCATE on PostgreSQL: a DELETE leaves the old rows as dead tuples until a vacuum,
            # so over a year's build (hundreds of fills) every later read of this scratch table
            # scanned all the rows of the earlier ones. (SQLite truncates an unqualified DELETE.)
            conn.execute(text("TRUNCATE rollup_credits") if postgres else delete(_CREDITS))
            base, credits = credits_ctes(
                start, end, tail, reach, TABLES.hosts, "rollup_credit_windows"
            )
            fill = text(
                f"INSERT INTO rollup_credits (order_pk, person, shares) WITH {base}, {credits} "
                "SELECT order_pk, person, shares FROM credits"
            ).bindparams(bindparam("shops", expanding=True))
            conn.execute(fill, {"shops": members})
            if postgres:  # it was empty when last planned with
                conn.execute(text("ANALYZE rollup_credits"))
            for a, b, offsets in segments([*sorted(people_zones), shop_tz], start, end):
                for axis in AXES.values():
                    segment = Segment(
                        axis,
                        a,
                        b,
                        {z: windows[z] for z in sorted(people_zones)},
                        offsets,
                        shop_tz,
                        effective_live_seconds=effective,
                    )
                    conn.execute(_insert(segment.person_rows()), {"shops": members})


_KEYS = "zone, axis, owner, shop_id, day, fx_day, currency, shares"


def _insert(select_sql: str) -> Any:
    """Add a segment's sums to the rollups (rows of several segments may share a day)."""
    updates = ", ".join(f"{v} = rollups.{v} + excluded.{v}" for v in V)
    sql = (
        f"INSERT INTO rollups ({_KEYS}, {', '.join(V)}) {select_sql} "
        f"ON CONFLICT ({_KEYS}) DO UPDATE SET {updates}"
    )
    return text(sql).bindparams(bindparam("shops", expanding=True))


def _refresh_hosts(conn: Connection, shops: list[str], lo: int, hi: int) -> None:
    """Re-split the hosts of the live sessions of `shops` starting in [lo, hi)."""
    conn.execute(
        delete(_HOSTS).where(
            _HOSTS.c.shop_id.in_(shops), _HOSTS.c.start_time >= lo, _HOSTS.c.start_time < hi
        )
    )
    where = f"shop_id IN :shops AND start_time >= {lo} AND start_time < {hi}"
    columns = "session, person, platform, shop_id, start_time, end_time, shares"
    fill = text(
        f"INSERT INTO live_hosts ({columns}) WITH RECURSIVE "
        f"{hosts_ctes(conn.dialect.name, where)} SELECT {columns} FROM hosts"
    ).bindparams(bindparam("shops", expanding=True))
    conn.execute(fill, {"shops": shops})


def epoch_day(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def from_epoch_day(days: int) -> date:
    """The date `days` after 1970-01-01."""
    return EPOCH + timedelta(days=int(days))


# -- reading ---------------------------------------------------------------------------------


# (currency, FX date, shares) → v0…v5; `shares` is how many people each row's orders (or
# sessions) are credited to (1 for a shop's own totals).
Sums = dict[tuple[str, date, int], list[int]]


def read(
    conn: Connection,
    axis: Axis,
    zone_name: str,
    first: date,
    last: date,
    *,
    people: Sequence[str] = (),
    shops: Sequence[str] = (),
) -> dict[str, Sums]:
    """Sums over the days first..last in `zone_name`: per person, or per shop (own totals)."""
    found: dict[str, Sums] = defaultdict(dict)
    for (key, _), sums in _read(conn, axis, zone_name, first, last, people, shops, False).items():
        found[key] = sums
    return found


def read_days(
    conn: Connection,
    axis: Axis,
    zone_name: str,
    first: date,
    last: date,
    *,
    people: Sequence[str] = (),
    shops: Sequence[str] = (),
) -> dict[tuple[str, date], Sums]:
    """As `read`, but each day's sums apart: (person or shop, local date) → sums, in one
    query (a chart's daily series)."""
    return _read(conn, axis, zone_name, first, last, people, shops, True)


def _read(
    conn: Connection,
    axis: Axis,
    zone_name: str,
    first: date,
    last: date,
    people: Sequence[str],
    shops: Sequence[str],
    by_day: bool,
) -> dict[tuple[str, date], Sums]:
    r = _ROLLUPS
    by = r.c.owner if people else r.c.shop_id
    day = r.c.day if by_day else literal_column("0")
    query = (
        select(
            by,
            day,
            r.c.currency,
            r.c.fx_day,
            r.c.shares,
            *(func.sum(r.c[v]) for v in V[: len(axis.measures)]),
        )
        .where(
            r.c.zone == zone_name,
            r.c.axis == axis.name,
            r.c.day >= epoch_day(first),
            r.c.day <= epoch_day(last),
        )
        .group_by(by, *([r.c.day] if by_day else []), r.c.currency, r.c.fx_day, r.c.shares)
    )
    query = (
        query.where(r.c.owner.in_(list(people)))
        if people
        else query.where(r.c.owner == "", r.c.shop_id.in_(list(shops)))
    )
    found: dict[tuple[str, date], Sums] = defaultdict(dict)
    days: dict[int, date] = {}  # a month's read has thousands of rows over some thirty days

    def as_date(number: int) -> date:
        known = days.get(number)
        if known is None:
            known = days[number] = from_epoch_day(number)
        return known

    # `.all()`: one fetch of every row from the driver instead of a call per row.
    for key, epoch, currency, fx_day, shares, *values in conn.execute(query).all():
        local = as_date(epoch) if by_day else first
        found[(key, local)][(currency, as_date(fx_day), int(shares))] = [
            int(v or 0) for v in values
        ]
    return found


# -- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A rollup row whose stored sums differ from a fresh computation."""

    key: tuple[Any, ...]
    stored: tuple[int, ...] | None
    computed: tuple[int, ...] | None


def _snapshot(conn: Connection) -> dict[tuple[Any, ...], tuple[int, ...]]:
    r = _ROLLUPS
    keys = (
        r.c.zone,
        r.c.axis,
        r.c.owner,
        r.c.shop_id,
        r.c.day,
        r.c.fx_day,
        r.c.currency,
        r.c.shares,
    )
    return {
        tuple(row[:8]): tuple(int(v) for v in row[8:])
        for row in conn.execute(select(*keys, *(r.c[v] for v in V)))
    }
