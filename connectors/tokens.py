"""Tokens at rest and their lifecycle: encrypted with a key from KPIBOT_SECRET_KEY, refreshed
before they expire, rotated refresh tokens written (once, by one process) before any use."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, insert, select, update

from connectors.clock import Clock
from connectors.errors import AuthRevoked, Transient
from kpi_engine.models import ShopConnection

_CONNECTIONS = ShopConnection.__table__  # type: ignore[attr-defined]
AUTHORIZE_WINDOW = 30 * 60  # an authorization URL's `state` is accepted this long
REFRESH_MARGIN = 10 * 60  # an access token this close to expiry is refreshed first
REFRESH_LEASE = 60  # one process refreshes a shop's tokens at a time


class SecretKeyMissing(RuntimeError):
    """KPIBOT_SECRET_KEY is not set, so tokens cannot be stored or read."""


@dataclass(frozen=True)
class Grant:
    """A shop's tokens: instants are epoch seconds; None when the platform sets no limit."""

    access_token: str
    access_expires: int
    refresh_token: str
    refresh_expires: int | None = None
    detail: dict[str, str] = field(default_factory=dict)  # platform ids that came with it


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the deployment's secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SecretKeyMissing("set KPIBOT_SECRET_KEY to store shop tokens (encrypted)")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"kpibot shop tokens"
        ).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, grant: Grant, now: int) -> str:
        """The grant as ciphertext (its timestamp is `now`, not the wall clock)."""
        plain = json.dumps(asdict(grant), sort_keys=True).encode()
        return self._fernet.encrypt_at_time(plain, now).decode()

    def open(self, sealed: str) -> Grant:
        """The grant back; a wrong key (KPIBOT_SECRET_KEY changed) is an AuthRevoked."""
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise AuthRevoked(
                "the stored tokens cannot be decrypted (was KPIBOT_SECRET_KEY changed?)"
            ) from None
        return Grant(**data)


@dataclass(frozen=True)
class Connection:
    """A shop's connection as stored (tokens decrypted)."""

    shop_id: str
    platform: str
    state: str
    grant: Grant | None
    token_version: int
    detail: dict[str, str]
    every_minutes: int
    revoked_reason: str | None


class ConnectionStore:
    """The shop_connections table: pending authorizations, tokens, revocations."""

    def __init__(self, engine: Engine, cipher: TokenCipher) -> None:
        self.engine = engine
        self.cipher = cipher

    def _row(self, row: Any) -> Connection:
        return Connection(
            shop_id=row.shop_id,
            platform=row.platform,
            state=row.state,
            grant=self.cipher.open(row.tokens) if row.tokens else None,
            token_version=row.token_version,
            detail=json.loads(row.detail or "{}"),
            every_minutes=row.every_minutes,
            revoked_reason=row.revoked_reason,
        )

    def get(self, shop_id: str) -> Connection | None:
        """The shop's connection, if it was ever started."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_CONNECTIONS).where(_CONNECTIONS.c.shop_id == shop_id)
            ).first()
        return None if row is None else self._row(row)

    def all(self) -> list[Connection]:
        """Every connection, by shop id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_CONNECTIONS).order_by(_CONNECTIONS.c.shop_id)).all()
        return [self._row(row) for row in rows]

    def begin(
        self, shop_id: str, platform: str, now: int, *, every_minutes: int | None = None
    ) -> str:
        """Start (or restart) connecting a shop: a fresh `state` nonce for the callback."""
        nonce = secrets.token_urlsafe(24)
        values: dict[str, Any] = {
            "oauth_state": nonce,
            "oauth_expires": now + AUTHORIZE_WINDOW,
            "updated_at": now,
            "platform": platform,
        }
        if every_minutes is not None:
            values["every_minutes"] = every_minutes
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_CONNECTIONS).where(_CONNECTIONS.c.shop_id == shop_id).values(**values)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(_CONNECTIONS).values(
                        shop_id=shop_id, state="pending", created_at=now, **values
                    )
                )
        return nonce

    def pending(self, state: str, platform: str, now: int) -> str | None:
        """The shop a callback's `state` belongs to, if it is ours, for this platform, in time."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    _CONNECTIONS.c.shop_id, _CONNECTIONS.c.platform, _CONNECTIONS.c.oauth_expires
                ).where(_CONNECTIONS.c.oauth_state == state)
            ).first()
        if row is None or row.platform != platform or (row.oauth_expires or 0) < now:
            return None
        return str(row.shop_id)

    def activate(
        self, shop_id: str, platform: str, grant: Grant, now: int, *, every_minutes: int | None
    ) -> None:
        """Store a new grant: the shop is connected (again)."""
        values: dict[str, Any] = {
            "platform": platform,
            "state": "active",
            "oauth_state": None,
            "oauth_expires": None,
            "tokens": self.cipher.seal(grant, now),
            "token_version": _CONNECTIONS.c.token_version + 1,
            "refreshing_until": None,
            "detail": json.dumps(grant.detail, sort_keys=True),
            "updated_at": now,
            "revoked_reason": None,
        }
        if every_minutes is not None:
            values["every_minutes"] = every_minutes
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_CONNECTIONS).where(_CONNECTIONS.c.shop_id == shop_id).values(**values)
            ).rowcount
            if not changed:
                values["token_version"] = 1
                conn.execute(insert(_CONNECTIONS).values(shop_id=shop_id, created_at=now, **values))

    def claim_refresh(self, shop_id: str, version: int, now: int) -> bool:
        """Take the right to refresh this version of the tokens (one process at a time)."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(_CONNECTIONS)
                .where(
                    _CONNECTIONS.c.shop_id == shop_id,
                    _CONNECTIONS.c.token_version == version,
                    _CONNECTIONS.c.state == "active",
                    (_CONNECTIONS.c.refreshing_until.is_(None))
                    | (_CONNECTIONS.c.refreshing_until < now),
                )
                .values(refreshing_until=now + REFRESH_LEASE)
            ).rowcount
        return bool(taken)

    def rotate(self, shop_id: str, version: int, grant: Grant, now: int) -> bool:
        """Replace the tokens of `version` by `grant` in one statement; False if replaced."""
        detail = json.dumps(grant.detail, sort_keys=True)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_CONNECTIONS)
                .where(_CONNECTIONS.c.shop_id == shop_id, _CONNECTIONS.c.token_version == version)
                .values(
                    tokens=self.cipher.seal(grant, now),
                    token_version=version + 1,
                    refreshing_until=None,
                    detail=detail,
                    updated_at=now,
                )
            ).rowcount
        return bool(changed)

    def revoke(self, shop_id: str, reason: str, now: int) -> bool:
        """Mark the shop's authorization gone; True the first time (tell the admins once)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_CONNECTIONS)
                .where(_CONNECTIONS.c.shop_id == shop_id, _CONNECTIONS.c.state != "revoked")
                .values(state="revoked", revoked_reason=reason[:500], updated_at=now)
            ).rowcount
        return bool(changed)

    def set_every(self, shop_id: str, minutes: int) -> None:
        """How often the shop is synced."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_CONNECTIONS)
                .where(_CONNECTIONS.c.shop_id == shop_id)
                .values(every_minutes=minutes)
            )


Refresher = Callable[[Grant, int], Grant]


class Tokens:
    """Hands out a usable access token per shop, refreshing (and rotating) it when due."""

    def __init__(self, store: ConnectionStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def access(self, shop_id: str, refresh: Refresher, *, force: bool = False) -> Grant:
        """A grant whose access token is valid for at least REFRESH_MARGIN more seconds.

        A refresh is claimed (one process per shop), the platform is asked, and the new pair
        is written in one conditional statement before anything uses it: a single-use refresh
        token (Shopee) is never used twice, nor lost between two processes.
        """
        for _ in range(30):
            now = int(self.clock.now())
            found = self.store.get(shop_id)
            if found is None or found.grant is None:
                raise AuthRevoked(f"shop {shop_id} is not connected", code="not_connected")
            if found.state == "revoked":
                raise AuthRevoked(found.revoked_reason or "authorization revoked", code="revoked")
            grant = found.grant
            if not force and grant.access_expires - now > REFRESH_MARGIN:
                return grant
            if grant.refresh_expires is not None and grant.refresh_expires <= now:
                raise AuthRevoked("the refresh token has expired", code="refresh_expired")
            if not self.store.claim_refresh(shop_id, found.token_version, now):
                self.clock.sleep(1)  # another process is refreshing: read its result
                force = False
                continue
            fresh = refresh(grant, now)
            if not self.store.rotate(shop_id, found.token_version, fresh, now):
                raise Transient("the tokens changed while they were refreshed; try again")
            return fresh
        raise Transient(f"shop {shop_id}: another process is still refreshing the tokens")
