"""A real `kpibot serve` delivering the outbox to a fake Feishu is killed with SIGKILL in the
middle of a batch and started again: every message arrives exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select

from adapters.feishu.outbound import send_uuid
from bot.chat.messages import Reply, Target
from bot.outbox import Outbox, platform_key
from kpi_engine.models import OutboxMessage
from tests.conftest import EXAMPLE_CONFIG
from tests.fakefeishu import TENANT, FakeFeishu
from tests.waiting import wait_for

MESSAGES = 150
CHATS = 30
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(db_url: str, fake: FakeFeishu, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG),
        "KPIBOT_SCHEDULER": "false",
        "KPIBOT_OUTBOX_LEASE_SECONDS": "3",
        "FEISHU_APP_ID": "cli_crashtest000001",
        "FEISHU_APP_SECRET": "secret",
        "FEISHU_ENCRYPT_KEY": "crash-test-key",
        "KPIBOT_FEISHU_DOMAIN": fake.url,
    }
    kpibot = Path(sys.executable).parent / "kpibot"
    return subprocess.Popen(
        [str(kpibot), "serve", "--port", str(free_port())],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(_OUTBOX.c.state)).scalars())


def test_a_sender_killed_mid_batch_loses_nothing_and_posts_nothing_twice(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    outbox = Outbox(engine)
    keys = []
    for i in range(MESSAGES):
        key = f"crash-test:{i}"
        keys.append(key)
        stored = outbox.put(
            Reply(f"message {i}", "zh"),
            Target("feishu", TENANT, f"oc_chat_{i % CHATS:02d}"),
            key=key,
            kind="digest",
        )
        assert stored is not None
    log = tmp_path / "serve.log"
    # Each send is answered 100 ms after Feishu has posted it: a process killed now leaves
    # messages posted but not marked sent.
    with FakeFeishu(latency=0.1) as fake:
        first = serve(db_url, fake, log)
        try:
            wait_for(lambda: len(fake.messages) >= MESSAGES // 3, "the first deliveries", 180)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        posted_at_kill = len(fake.messages)
        assert posted_at_kill < MESSAGES, "the kill came after the whole batch"
        # Some messages were posted by Feishu but are still "sending" in the outbox.
        with engine.connect() as conn:
            in_flight = set(
                conn.execute(select(_OUTBOX.c.key).where(_OUTBOX.c.state == "sending")).scalars()
            )
        posted = {m.content["text"] for m in fake.messages}
        unconfirmed = [k for k in in_flight if f"message {k.split(':')[1]}" in posted]
        assert unconfirmed, "no message was caught between posting and being marked sent"

        second = serve(db_url, fake, log)
        try:
            wait_for(lambda: states(engine)["sent"] == MESSAGES, "the rest of the outbox", 180)
        finally:
            second.terminate()
            second.wait(20)
        texts = Counter(m.content["text"] for m in fake.messages)
        assert len(fake.messages) == MESSAGES, log.read_text()[-3000:]
        assert set(texts) == {f"message {i}" for i in range(MESSAGES)}
        assert max(texts.values()) == 1
        # The unconfirmed ones were sent again after the restart, under the same uuid, and
        # Feishu recognised them.
        assert fake.repeated_uuids >= len(unconfirmed)
        assert all(
            m.uuid == send_uuid(platform_key(k))
            for k, m in zip(
                keys,
                sorted(fake.messages, key=lambda m: int(m.content["text"].split()[1])),
                strict=True,
            )
        )
    assert states(engine) == Counter({"sent": MESSAGES})
    print(
        f"killed after {posted_at_kill} of {MESSAGES} posted, {len(unconfirmed)} posted but "
        f"unconfirmed; after the restart: {len(fake.messages)} posted once each, "
        f"{fake.repeated_uuids} re-sends recognised by their uuid"
    )
