"""`kpibot serve --workers 2` on PostgreSQL: the web process verifies, records and acknowledges
Feishu deliveries; two `kpibot worker` processes answer them. One worker is killed with
SIGKILL in the middle: every message is still answered, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from kpi_engine.models import InboundEvent
from kpi_engine.organisation import Organisation
from tests.conftest import EXAMPLE_CONFIG
from tests.fakefeishu import FakeFeishu
from tests.test_feishu import ENCRYPT_KEY, TOKEN, encrypt, message_event, open_id, signed
from tests.test_outbox_crash import free_port
from tests.waiting import wait_for

MESSAGES = 60
_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(_EVENTS.c.state)).scalars())


@pytest.mark.backends("postgresql")
def test_workers_answer_every_delivery_once_though_one_is_killed(
    engine: Engine, db_url: str, organisation: Organisation, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with FakeFeishu(latency=0.1) as fake:
        env = {
            **os.environ,
            "KPIBOT_DATABASE_URL": db_url,
            "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG),
            "KPIBOT_SCHEDULER": "false",
            "KPIBOT_INBOUND_LEASE_SECONDS": "3",
            "KPIBOT_OUTBOX_LEASE_SECONDS": "3",
            "FEISHU_APP_ID": "cli_workertest000001",
            "FEISHU_APP_SECRET": "secret",
            "FEISHU_ENCRYPT_KEY": ENCRYPT_KEY,
            "FEISHU_VERIFICATION_TOKEN": TOKEN,
            "KPIBOT_FEISHU_DOMAIN": fake.url,
        }
        kpibot = Path(sys.executable).parent / "kpibot"
        serve = subprocess.Popen(
            [str(kpibot), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                try:
                    return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, "kpibot serve", 120)
            wait_for(lambda: len(children(serve.pid)) == 2, "two workers", 60)
            li_na = open_id(organisation, "li.na")
            with httpx.Client(base_url=base, timeout=30) as client:
                for n in range(MESSAGES):
                    event = message_event(
                        li_na, "帮助", chat=f"oc_direct_{n:03d}", chat_type="p2p", mention_bot=False
                    )
                    body = encrypt(event)
                    answer = client.post("/feishu/events", content=body, headers=signed(body))
                    assert answer.status_code == 200, answer.text
            # The web process only recorded them: the workers answer, and one dies mid-way.
            wait_for(lambda: len(fake.messages) >= MESSAGES // 4, "the first answers", 180)
            victim = children(serve.pid)[0]
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: states(engine)["done"] == MESSAGES, "every delivery done", 240)
            wait_for(lambda: len(fake.messages) >= MESSAGES, "every answer", 120)
            wait_for(lambda: victim not in children(serve.pid), "the restart", 30)
        finally:
            workers = children(serve.pid)
            serve.terminate()
            serve.wait(60)
        # Stopping `serve` stops its workers (uvicorn re-raises SIGTERM once it has shut down).
        wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to stop", 60)
        output = log.read_text()
        chats = Counter(m.chat_id or m.receive_id for m in fake.messages)
        assert len(fake.messages) == MESSAGES, output[-3000:]
        assert set(chats) == {f"oc_direct_{n:03d}" for n in range(MESSAGES)}
        assert max(chats.values()) == 1
    assert "restarted" in output
    assert states(engine) == Counter({"done": MESSAGES})
    with engine.connect() as conn:  # the killed worker's claims were taken over
        assert max(conn.execute(select(_EVENTS.c.attempts)).scalars()) >= 2
