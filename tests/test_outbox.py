"""The durable outbox: stored before sent, delivered once, paced, retried, dead-lettered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from bot.chat.adapter import RateLimited, TargetNotFound, Unavailable
from bot.chat.messages import Button, Chart, KeyValue, Reply, Sent, Table, Target, reply_from_json
from bot.chat.messages import to_json as reply_to_json
from bot.chat.notifier import Notifier
from bot.outbox import Limit, Outbox, Sender, notice_admins, platform_key


@dataclass
class Clock:
    """Time that moves only when somebody sleeps or says so."""

    now: float = 1_800_000_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Platform:
    """A chat platform that records deliveries and fails as it is told to."""

    failures: list[Exception] = field(default_factory=list)
    delivered: list[tuple[str, str, str | None]] = field(default_factory=list)  # channel, text, key
    platform: str = "feishu"
    private_in_place: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render(self, reply: Reply, target: Target) -> object:
        return reply.text

    def send(self, reply: Reply, target: Target, *, key: str | None = None) -> Sent:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.delivered.append((target.channel, reply.text, key))
            return Sent(self.platform, target.channel, f"om_{len(self.delivered)}")

    def update(self, sent: Sent, reply: Reply) -> Sent:
        return sent


def target(channel: str = "oc_team") -> Target:
    return Target("feishu", "", channel)


def make(
    engine: Engine, clock: Clock, platform: Platform, **options: object
) -> tuple[Outbox, Sender]:
    outbox = Outbox(engine, clock=clock)
    sender = Sender(outbox, {"feishu": platform}, sleep=clock.sleep, **options)  # type: ignore[arg-type]
    return outbox, sender


def test_a_reply_survives_the_round_trip_through_json() -> None:
    reply = Reply(
        "今天GMV ¥1,234.50",
        "zh",
        headline="李娜 · 今天",
        fields=(KeyValue("GMV", "¥1,234.50"),),
        table=Table(("#", "name"), (("1", "李娜"),)),
        chart=Chart("GMV", b"\x89PNG\r\n", "daily GMV"),
        buttons=(Button("Ack", "alert.ack", "42", "primary"),),
        context="provisional",
        private=True,
        thread="t1",
    )
    assert reply_from_json(reply_to_json(reply)) == reply


def test_a_message_is_stored_then_delivered_once_and_a_key_is_used_once(engine: Engine) -> None:
    clock, platform = Clock(), Platform()
    outbox, sender = make(engine, clock, platform)
    first = outbox.put(Reply("早报", "zh"), target(), key="digest:sz-live:2026-11-23")
    assert first is not None
    assert outbox.put(Reply("早报", "zh"), target(), key="digest:sz-live:2026-11-23") is None
    assert outbox.counts() == {"pending": 1}
    assert sender.run_once() == 1
    assert sender.run_once() == 0
    assert platform.delivered == [("oc_team", "早报", platform_key("digest:sz-live:2026-11-23"))]
    assert outbox.counts() == {"sent": 1}
    sent = outbox.sent_message("digest:sz-live:2026-11-23")
    assert sent is not None and sent.message_id == "om_1"


def test_rate_limited_waits_as_told_without_using_up_attempts(engine: Engine) -> None:
    clock = Clock()
    platform = Platform(failures=[RateLimited(30.0), RateLimited(30.0), RateLimited(30.0)])
    outbox, sender = make(engine, clock, platform, max_attempts=2)
    outbox.put(Reply("hi", "en"), target(), key="k1")
    for _ in range(3):
        assert sender.run_once() == 1
        assert sender.run_once() == 0  # not due before Retry-After
        [entry] = outbox.entries(["pending"])
        assert entry.due_at == pytest.approx(clock.now + 30.0)
        assert entry.error and "rate limited" in entry.error
        clock.now += 30.0
    assert sender.run_once() == 1
    assert [text for _, text, _ in platform.delivered] == ["hi"]


def test_failures_back_off_then_dead_letter_with_a_notice_to_admins(engine: Engine) -> None:
    clock = Clock()
    platform = Platform(failures=[Unavailable("502 from the gateway")] * 3)
    outbox = Outbox(engine, clock=clock)
    admins = [(Target.direct("feishu", "", "ou_admin"), "zh")]
    sender = Sender(
        outbox,
        {"feishu": platform},
        sleep=clock.sleep,
        max_attempts=3,
        on_dead=notice_admins(outbox, admins),
    )
    outbox.put(Reply("digest", "en"), target(), key="k-dead", kind="digest")
    delays = []
    for _ in range(2):
        assert sender.run_once() == 1
        [entry] = outbox.entries(["pending"])
        delays.append(entry.due_at - clock.now)
        clock.now = entry.due_at
    assert 1.0 <= delays[0] <= 2.0 and 2.0 <= delays[1] <= 4.0  # 2 s, then 4 s, with jitter
    assert sender.run_once() == 1  # the third failure is the last
    [dead] = outbox.entries(["dead"])
    assert dead.key == "k-dead" and "gave up after 3 attempts" in (dead.error or "")
    assert "502 from the gateway" in (dead.error or "")
    # The admin is told, in their language, which message and how to retry it.
    assert sender.run_once() == 1
    channel, text, _ = platform.delivered[-1]
    assert channel == ""
    assert "死信" in text and f"kpibot outbox retry {dead.id}" in text
    # An admin's retry sends it again.
    assert outbox.retry(dead.id, actor="cli")
    assert sender.run_once() == 1
    assert platform.delivered[-1][1] == "digest"
    assert outbox.counts() == {"sent": 2}


def test_a_permanent_error_is_dead_lettered_at_once_and_can_be_dropped(engine: Engine) -> None:
    clock = Clock()
    platform = Platform(failures=[TargetNotFound("chat oc_gone not found")])
    outbox, sender = make(engine, clock, platform)
    row = outbox.put(Reply("hi", "en"), target("oc_gone"), key="k-gone")
    assert row is not None
    sender.run_once()
    [dead] = outbox.entries(["dead"])
    assert dead.error == "TargetNotFound: chat oc_gone not found" and dead.attempts == 1
    assert outbox.drop(row, actor="cli") and not outbox.drop(row, actor="cli")
    assert outbox.counts() == {"dropped": 1}


def test_a_message_claimed_by_a_process_that_died_is_delivered_after_its_lease(
    engine: Engine,
) -> None:
    clock, platform = Clock(), Platform()
    outbox, sender = make(engine, clock, platform, lease=60.0)
    outbox.put(Reply("hi", "en"), target(), key="k-crash")
    [claimed] = outbox.claim(lease=60.0)  # ...and then the claiming process died
    assert sender.run_once() == 0
    clock.now += 61
    assert sender.run_once() == 1
    assert platform.delivered == [("oc_team", "hi", platform_key("k-crash"))]
    assert claimed.attempts == 1 and outbox.entries(["sent"])[0].attempts == 2


def test_sends_are_paced_per_target_and_per_app(engine: Engine) -> None:
    clock, platform = Clock(), Platform()
    limits = {"feishu": Limit(per_target=1.0, per_app=4.0)}
    outbox, sender = make(engine, clock, platform, limits=limits, threads=1, max_wait=5.0)
    for n in range(3):
        outbox.put(Reply(f"a{n}", "en"), target("oc_a"), key=f"a{n}")
    for n in range(4):
        outbox.put(Reply(f"b{n}", "en"), target(f"oc_b{n}"), key=f"b{n}")
    start = clock.now
    sender.drain(poll=0.1)
    assert len(platform.delivered) == 7
    # Seven messages at 4/s for the app, and oc_a's three at 1/s: no faster than either.
    assert clock.now - start >= 2.0
    # The three messages to oc_a went out in order.
    assert [t for c, t, _ in platform.delivered if c == "oc_a"] == ["a0", "a1", "a2"]


def test_a_target_far_behind_gives_its_claim_back_until_its_turn(engine: Engine) -> None:
    clock, platform = Clock(), Platform()
    limits = {"feishu": Limit(per_target=1 / 60, headroom=1.0)}  # one a minute, exactly
    outbox, sender = make(engine, clock, platform, limits=limits, max_wait=5.0)
    outbox.put(Reply("one", "en"), target(), key="one")
    outbox.put(Reply("two", "en"), target(), key="two")
    assert sender.run_once() == 2
    assert [t for _, t, _ in platform.delivered] == ["one"]
    [waiting] = outbox.entries(["pending"])
    assert waiting.attempts == 0 and waiting.due_at == pytest.approx(clock.now + 60)
    clock.now += 60
    assert sender.run_once() == 1
    assert [t for _, t, _ in platform.delivered] == ["one", "two"]


def test_concurrent_claims_never_take_a_row_twice(engine: Engine) -> None:
    outbox = Outbox(engine)
    for n in range(200):
        outbox.put(Reply(f"m{n}", "en"), target(f"oc_{n % 7}"), key=f"m{n}")
    claimers = [Outbox(engine) for _ in range(6)]
    barrier = threading.Barrier(len(claimers))
    taken: list[list[int]] = [[] for _ in claimers]

    def work(n: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            while claimed := claimers[n].claim(limit=3, lease=600):
                taken[n].extend(p.id for p in claimed)

        return run

    threads = [threading.Thread(target=work(n)) for n in range(len(claimers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [id for ids in taken for id in ids]
    assert len(every) == 200 and len(set(every)) == 200
    assert sum(1 for ids in taken if ids) > 1  # the claimers did run side by side


def test_concurrent_senders_deliver_everything_once(engine: Engine) -> None:
    platform = Platform()
    outbox = Outbox(engine)
    for n in range(60):
        outbox.put(Reply(f"m{n}", "en"), target(f"oc_{n % 7}"), key=f"m{n}")
    senders = [Sender(Outbox(engine), {"feishu": platform}, limits={}, threads=2) for _ in range(3)]
    threads = [threading.Thread(target=s.drain) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = sorted(text for _, text, _ in platform.delivered)
    assert texts == sorted(f"m{n}" for n in range(60))
    assert outbox.counts() == {"sent": 60}


def test_the_notifier_delivers_a_reply_at_once_and_keeps_a_failed_one(engine: Engine) -> None:
    clock = Clock()
    platform = Platform(failures=[Unavailable("timeout")])
    outbox, sender = make(engine, clock, platform)
    notifier = Notifier({"feishu": platform}, outbox=outbox, sender=sender)
    assert notifier.deliver(Reply("first", "en"), target(), key="r1") is None  # failed
    sent = notifier.deliver(Reply("second", "en"), target(), key="r2")
    assert sent is not None and sent.message_id == "om_1"
    assert notifier.deliver(Reply("second", "en"), target(), key="r2") is None  # a duplicate
    clock.now += 10
    sender.drain()
    assert [t for _, t, _ in platform.delivered] == ["second", "first"]
