"""Client-side rate limiting: a token bucket per (shop, operation), as the platforms count."""

from __future__ import annotations

import threading

from connectors.clock import Clock


class TokenBucket:
    """`rate` requests a second with bursts of `burst`; `take()` waits for a token.

    Amazon's usage plans are exactly this model; TikTok's 50 QPS per API and shop is a bucket
    of 50 refilled at 50/s. A 429 with a wait pushes every later call back (`hold`).
    """

    def __init__(self, clock: Clock, rate: float, burst: float) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = self.burst
        self.stamp = clock.now()
        self.held_until = 0.0
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """Follow the rate the platform says it applies (x-amzn-RateLimit-Limit)."""
        if rate > 0:
            with self._lock:
                self._refill()
                self.rate = rate

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> float:
        """Wait until a request may go; the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                now = self.clock.now()
                wait = self.held_until - now
                if wait <= 0:
                    if self.tokens >= 1 - 1e-6:  # float dust is not worth a wait
                        self.tokens = max(0.0, self.tokens - 1)
                        return waited
                    # At least a millisecond: a smaller step may not move an epoch clock.
                    wait = max(0.001, (1 - self.tokens) / self.rate)
            self.clock.sleep(wait)
            waited += wait

    def hold(self, seconds: float) -> None:
        """No request before `seconds` from now (a 429's Retry-After); the bucket empties."""
        with self._lock:
            self._refill()
            self.held_until = max(self.held_until, self.clock.now() + seconds)
            self.tokens = 0.0


class Buckets:
    """The buckets of one platform, one per (shop, operation), made on first use."""

    def __init__(self, clock: Clock, rate: float, burst: float) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def of(
        self, shop: str, operation: str, rate: float | None = None, burst: float | None = None
    ) -> TokenBucket:
        """The bucket for `operation` on `shop` (with its own rate, where the platform sets one)."""
        with self._lock:
            key = (shop, operation)
            found = self._buckets.get(key)
            if found is None:
                found = TokenBucket(self.clock, rate or self.rate, burst or self.burst)
                self._buckets[key] = found
            return found
