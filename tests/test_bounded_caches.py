"""Nothing kept per chat grows without end (issue 20, item 2): the sender's per-chat pacing
forgets the chats whose next slot has passed — and forgetting never lets a chat send faster —
and the adapters' per-chat caches keep only their most recently used entries."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from adapters.feishu.outbound import FeishuAdapter
from bot.chat.messages import Button, Reply, Target
from bot.chat.recent import Recent
from bot.outbox import Pacer
from tests.fakefeishu import TENANT, FakeFeishu

RATE = 5.0 * 0.96  # Feishu's 5 a second per chat, with the sender's headroom


def test_the_pacer_forgets_chats_whose_slot_has_passed() -> None:
    pacer, now = Pacer(), 1_800_000_000.0
    for n in range(50_000):  # a new chat every 10 ms, for over eight minutes
        assert pacer.reserve({f"feishu:t:oc_{n}": (RATE, 1)}, now) == 0
        now += 0.01
    # Only the chats booked into the future are kept (about 1/RATE s of them), plus what
    # arrived since the last sweep.
    assert len(pacer) <= Pacer.SWEEP_AT


def test_forgetting_never_lets_a_chat_send_faster() -> None:
    """The same bookings on a pacer that sweeps all the time and one that never does get the
    same waits, to the last bit: a forgotten chat is booked as it would have been."""
    forgetful, keeping = Pacer(sweep_at=1), Pacer(sweep_at=10**9)
    draw = random.Random(20)
    now = 1_800_000_000.0
    for _ in range(20_000):
        chat = f"slack:T1:C{draw.randrange(40)}"
        keys = {chat: (1.0 * 0.96, draw.choice((1, 1, 3)))}
        if draw.random() < 0.5:
            keys["slack:T1"] = (20.0, 1)
        waits = [pacer.reserve(keys, now) for pacer in (forgetful, keeping)]
        assert waits[0] == waits[1]
        if waits[0] > 5.0:  # the sender gives a far slot back
            for pacer in (forgetful, keeping):
                pacer.release(keys, {k: rate for k, (rate, _) in keys.items()})
        if draw.random() < 0.01:  # the platform said to wait
            until = now + draw.uniform(0, 30)
            for pacer in (forgetful, keeping):
                pacer.hold(chat, until)
        now += draw.expovariate(2.0)
    assert len(forgetful) < len(keeping)


def test_a_recent_cache_keeps_its_most_recently_used_entries() -> None:
    recent: Recent[str, int] = Recent(3)
    for n, key in enumerate("abc"):
        recent.put(key, n)
    assert recent.get("a") == 0  # now the most recently used
    recent.put("d", 3)
    assert len(recent) == 3
    assert recent.get("b") is None
    assert [recent.get(k) for k in "acd"] == [0, 2, 3]
    with pytest.raises(ValueError, match="at least one"):
        Recent(0)


@pytest.fixture
def fake() -> Iterator[FakeFeishu]:
    with FakeFeishu() as server:
        yield server


def test_the_feishu_adapter_remembers_a_bounded_number_of_direct_chats(
    fake: FakeFeishu, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FeishuAdapter, "DIRECT_CHATS", 2)
    adapter = FeishuAdapter("cli_bounded", "secret", fake.url)
    card = Reply("进度", "zh", headline="进度", buttons=(Button("本月排名", "ask", "本月排名"),))
    sent = [
        adapter.send(card, Target.direct("feishu", TENANT, f"ou_{n}"), key=f"dm-{n}")
        for n in range(3)
    ]
    assert len(adapter._direct_chats) == 2
    # The newest chat is still known as one-to-one: its updated card keeps the mark.
    adapter.update(sent[2], card)
    assert '"direct": true' in json.dumps(fake.patches[-1][1])
    # The oldest was forgotten: its card is updated as any other (the documented fallback).
    adapter.update(sent[0], card)
    assert '"direct": true' not in json.dumps(fake.patches[-1][1])
