"""A sync process killed mid-sync and started again: nothing lost, nothing twice (counted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from connectors.clock import SystemClock
from connectors.tiktok import TikTokConnector
from kpi_engine.models import Order, SyncRun
from tests import faketiktok
from tests.faketiktok import FakeTikTok
from tests.shopsync import build_sync as build
from tests.shopsync import shop_config
from tests.waiting import wait_for

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parent.parent


class SlowTikTok(FakeTikTok):
    def answer(self, request):  # type: ignore[no-untyped-def]
        if request.path.endswith("/orders/search"):
            time.sleep(0.15)  # a page takes a while: room to die in the middle
        return super().answer(request)


def test_killed_mid_sync_then_restarted_loses_and_duplicates_nothing(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    from kpi_engine.organisation import load_organisation

    config = shop_config(tmp_path)
    organisation = load_organisation(config)
    clock = SystemClock()
    now = int(clock.now())
    with SlowTikTok() as fake:
        for n in range(3000):
            fake.add_order(f"5770{n:06d}", created=now - 20 * 86400 + n * 500)
        tiktok = TikTokConnector(
            faketiktok.APP_KEY, faketiktok.APP_SECRET, clock, api_url=fake.url, auth_url=fake.url
        )
        sync = build(engine, organisation, {"tiktok": tiktok}, clock)  # type: ignore[arg-type]
        sync.complete("tiktok", "tts-us-01", "auth-code-1", {}, "")
        command = [
            sys.executable,
            "-m",
            "tests.sync_child",
            fake.url,
            db_url,
            str(config),
            str(now - 21 * 86400),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        first = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: len(fake.to("/order/202309/orders/search")) >= 12, "a dozen pages", 60)
        except AssertionError:
            first.kill()
            raise AssertionError(first.communicate()[1].decode()[-3000:]) from None
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = len(fake.to("/order/202309/orders/search"))
        with engine.connect() as conn:
            partial = conn.execute(select(func.count()).select_from(Order)).scalar()
        assert 0 < partial < 3000  # it died in the middle

        second = subprocess.run(
            [*command[:-1], ""], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr
        searches = fake.to("/order/202309/orders/search")
        # The restart resumed at the page where the cursor stood, not from the start.
        assert "page_token" in searches[killed_at].query
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(Order)).scalar()
            distinct = conn.execute(select(func.count(func.distinct(Order.order_id)))).scalar()
            revised = conn.execute(select(func.count()).where(Order.revision > 1)).scalar()
            runs = conn.execute(select(SyncRun.state).order_by(SyncRun.id)).scalars().all()
        assert total == distinct == 3000  # nothing lost, nothing twice
        assert revised == 0
        assert runs[0] == "running"  # the killed run, as it was left
        assert "done" in runs[1:]
