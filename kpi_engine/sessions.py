"""Dashboard sign-in records: one-time links redeemed, and the sessions they open.

A link's nonce is stored when it is redeemed, under a unique key, in the same transaction that
opens the session: a second redemption of the same link (replayed, or forwarded and opened
after its owner) finds the key taken and opens nothing. A session id is random and reaches the
database only as its SHA-256, so a copy of the table lets nobody in.

A link forwarded and opened *before* its owner opens a session as the owner: whoever holds a
genuine link is, to the server, that person. What limits it: the owner, coming second, is told
when and from where the link was opened and may end every session of theirs
(`end_sessions`); each opening, refusal and ending is in the audit trail (kind "access").
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from kpi_engine.audit import record
from kpi_engine.models import DashboardLink, DashboardSession

_LINKS = DashboardLink.__table__  # type: ignore[attr-defined]
_SESSIONS = DashboardSession.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Session:
    """An open dashboard session: whose, its forms' CSRF token, and when it ends."""

    person: str
    csrf: str
    expires_at: int


@dataclass(frozen=True)
class Opened:
    """A session just opened: the secret id for the cookie, and the session."""

    id: str
    session: Session


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def redeem(
    engine: Engine,
    nonce: str,
    person: str,
    *,
    link_expires_at: int,
    now: int,
    lifetime: int,
    client: str | None = None,
) -> Opened | None:
    """Record the link's nonce as used and open a session for `person` lasting `lifetime`
    seconds; None when the nonce was used before (nothing is opened then)."""
    session_id = secrets.token_urlsafe(32)
    session = Session(person, secrets.token_urlsafe(32), now + lifetime)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(_LINKS).values(
                    nonce=nonce,
                    person=person,
                    expires_at=link_expires_at,
                    used_at=now,
                    client=client,
                )
            )
            conn.execute(
                insert(_SESSIONS).values(
                    id_hash=_hash(session_id),
                    person=person,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
            record(
                conn, "access", link_id(nonce), person, "opened", at=now, person=person,
                detail={"client": client} if client else None,
            )  # fmt: skip
    except IntegrityError:
        return None
    return Opened(session_id, session)


def link_id(nonce: str) -> str:
    """A link's name in the audit trail (not its nonce)."""
    return "link:" + hashlib.sha256(nonce.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Use:
    """When a redeemed link was used, and from which address."""

    used_at: int
    client: str | None


def use_of(engine: Engine, nonce: str) -> Use | None:
    """How a link was redeemed; None when it was not."""
    with engine.connect() as conn:
        row = conn.execute(
            select(_LINKS.c.used_at, _LINKS.c.client).where(_LINKS.c.nonce == nonce)
        ).one_or_none()
    return None if row is None else Use(row.used_at, row.client)


def refused(engine: Engine, nonce: str, person: str, *, now: int, client: str | None) -> None:
    """Record in the audit trail that a used link was presented again."""
    with engine.begin() as conn:
        record(
            conn, "access", link_id(nonce), person, "refused_used", at=now, person=person,
            detail={"client": client} if client else None,
        )  # fmt: skip


def end_sessions(
    engine: Engine, person: str, *, now: int, nonce: str, client: str | None = None
) -> int:
    """End every open session of `person` (asked with their link `nonce`, as the audit trail
    records); how many were open."""
    with engine.begin() as conn:
        result = conn.execute(
            update(_SESSIONS)
            .where(
                _SESSIONS.c.person == person,
                _SESSIONS.c.ended_at.is_(None),
                _SESSIONS.c.expires_at > now,
            )
            .values(ended_at=now)
        )
        record(
            conn, "access", link_id(nonce), person, "signed_out_everywhere", at=now,
            person=person,
            detail={"sessions": result.rowcount, **({"client": client} if client else {})},
        )  # fmt: skip
    return int(result.rowcount)


def session_of(engine: Engine, session_id: str, *, now: int) -> Session | None:
    """The open session with this id; None when unknown, expired or logged out."""
    if not session_id or len(session_id) > 100:
        return None
    query = select(_SESSIONS.c.person, _SESSIONS.c.csrf, _SESSIONS.c.expires_at).where(
        _SESSIONS.c.id_hash == _hash(session_id),
        _SESSIONS.c.ended_at.is_(None),
        _SESSIONS.c.expires_at > now,
    )
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return None if row is None else Session(row.person, row.csrf, row.expires_at)


def end_session(engine: Engine, session_id: str, *, now: int) -> bool:
    """Log a session out; False when it was not open."""
    with engine.begin() as conn:
        result = conn.execute(
            update(_SESSIONS)
            .where(_SESSIONS.c.id_hash == _hash(session_id), _SESSIONS.c.ended_at.is_(None))
            .values(ended_at=now)
        )
    return result.rowcount == 1
