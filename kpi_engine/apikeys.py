"""API keys: named, stored only as a hash, scoped, revocable, and their use audited.

A key is `kpi_<id>_<secret>`: the id finds the row, the secret (random, 32 bytes) is checked
against its stored SHA-256 in constant time (a high-entropy secret needs no slow hash). Scopes:
`import` (data files), `read:company` (every figure), `read:team:<id>` (a team's figures, its
shops' and its people's), `admin` (everything).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from kpi_engine.audit import record
from kpi_engine.models import ApiKey
from kpi_engine.organisation import Organisation
from kpi_engine.scopes import Scope

_KEYS = ApiKey.__table__  # type: ignore[attr-defined]
_TOKEN = re.compile(r"^kpi_([a-z0-9]{8})_([A-Za-z0-9_-]{20,64})$")
SCOPE_FORMS = ("import", "read:company", "read:team:<id>", "admin")


class ApiKeyError(ValueError):
    """A key that cannot be created as asked (a name taken, a scope unknown)."""


@dataclass(frozen=True)
class Caller:
    """Who called the API with a valid key, and what the key may do."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """May the key do `scope` ("import", …)? An admin key may do anything."""
        return "admin" in self.scopes or scope in self.scopes

    def may_read(self, organisation: Organisation, target: Scope) -> bool:
        """May the key read `target`'s figures?"""
        if self.may("read:company"):
            return True
        if target.kind == "company":
            return False
        team: str | None
        if target.kind == "team":
            team = target.id
        elif target.kind == "shop":
            shop = organisation.shops.get(target.id)
            team = shop.team if shop else None
        else:
            person = organisation.people.get(target.id)
            team = person.team if person else None
        return team is not None and f"read:team:{team}" in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str], organisation: Organisation) -> frozenset[str]:
    """The scopes, each of a known form and naming a known team; ApiKeyError otherwise."""
    for scope in scopes:
        if scope in ("import", "read:company", "admin"):
            continue
        if scope.startswith("read:team:") and scope[10:] in organisation.teams:
            continue
        raise ApiKeyError(f"unknown scope {scope!r} (use {', '.join(SCOPE_FORMS)})")
    if not scopes:
        raise ApiKeyError(f"give at least one scope ({', '.join(SCOPE_FORMS)})")
    return frozenset(scopes)


def create(engine: Engine, name: str, scopes: frozenset[str], *, actor: str, now: int) -> str:
    """A new key (shown once: only its hash is kept)."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        taken = conn.execute(
            select(_KEYS.c.id).where(_KEYS.c.name == name, _KEYS.c.revoked_at.is_(None))
        ).first()
        if taken is not None:
            raise ApiKeyError(f"a key named {name!r} exists; revoke it first to rotate it")
        conn.execute(
            insert(_KEYS).values(
                key_id=key_id,
                name=name,
                secret_hash=_hash(secret),
                scopes=",".join(sorted(scopes)),
                created_at=now,
                created_by=actor,
            )
        )
        record(conn, "apikey", name, actor, "created", at=now, detail=",".join(sorted(scopes)))
    return f"kpi_{key_id}_{secret}"


def revoke(engine: Engine, name: str, *, actor: str, now: int) -> bool:
    """Revoke the live key of that name; False when there is none."""
    with engine.begin() as conn:
        done = conn.execute(
            update(_KEYS)
            .where(_KEYS.c.name == name, _KEYS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if done.rowcount:
            record(conn, "apikey", name, actor, "revoked", at=now)
    return bool(done.rowcount)


@dataclass(frozen=True)
class KeyInfo:
    """A key as `kpibot apikey list` shows it (never its secret)."""

    name: str
    scopes: tuple[str, ...]
    created_at: int
    created_by: str
    last_used_at: int | None
    revoked_at: int | None


def listing(engine: Engine) -> list[KeyInfo]:
    """Every key: name, scopes, when created and by whom, last used, revoked."""
    with engine.connect() as conn:
        rows = conn.execute(select(_KEYS).order_by(_KEYS.c.id)).mappings().all()
    return [
        KeyInfo(
            r["name"],
            tuple(r["scopes"].split(",")),
            r["created_at"],
            r["created_by"],
            r["last_used_at"],
            r["revoked_at"],
        )
        for r in rows
    ]


def verify(engine: Engine, token: str) -> Caller | None:
    """The caller a presented key stands for; None for a malformed, unknown or revoked one."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(_KEYS).where(_KEYS.c.key_id == match.group(1), _KEYS.c.revoked_at.is_(None))
            )
            .mappings()
            .first()
        )
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(match.group(2))):
        return None
    return Caller(row["name"], frozenset(row["scopes"].split(",")))


def used(engine: Engine, caller: Caller, what: str, *, now: int) -> None:
    """Record a use of the key (its last use, and the audit trail)."""
    with engine.begin() as conn:
        conn.execute(
            update(_KEYS)
            .where(_KEYS.c.name == caller.name, _KEYS.c.revoked_at.is_(None))
            .values(last_used_at=now)
        )
        record(conn, "apikey", caller.name, caller.name, "used", at=now, detail=what)
