"""One way to call a platform: wait for the rate limit, retry what may pass, honour 429 waits."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import httpx

from connectors.clock import Clock
from connectors.errors import RateLimited, Transient
from connectors.ratelimit import TokenBucket

T = TypeVar("T")
TRIES = 6


def backoff(attempt: int) -> float:
    """Randomised exponential backoff (the platforms' advice): about 1, 2, 4 … 32 seconds."""
    return float(min(32, 2**attempt)) * random.uniform(0.5, 1.0)


def call(bucket: TokenBucket, clock: Clock, attempt: Callable[[], T], *, tries: int = TRIES) -> T:
    """Run `attempt` within the bucket's rate; a 429 holds the bucket for its Retry-After (or a
    backoff), a transient failure is retried after a backoff; the last failure is raised."""
    for number in range(tries):
        bucket.take()
        try:
            return attempt()
        except RateLimited as exc:
            bucket.hold(exc.retry_after if exc.retry_after is not None else backoff(number))
            if number == tries - 1:
                raise
        except (Transient, httpx.TransportError) as exc:
            if number == tries - 1:
                raise Transient(str(exc)) from exc
            clock.sleep(backoff(number))
    raise AssertionError("unreachable")


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds, when it is one."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
