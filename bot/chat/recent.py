"""A bounded memory of the most recently used entries, for caches kept per chat or per user.

A bot in a 2,000-person company meets a new chat every few minutes for as long as it runs, so
nothing kept per chat may grow without end: a cache that can be asked again (a user's direct
chat, a chat's kind) forgets its least recently used entries past a size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `size` entries; putting one more forgets the least recently used. Thread-safe."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a Recent cache holds at least one entry")
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for `key` (now the most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `key`, forgetting the least recently used entry past the size."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
