"""A sync process for the crash test: syncs one TikTok shop against a fake, on the real clock."""

from __future__ import annotations

import sys
from pathlib import Path

from connectors.clock import SystemClock
from connectors.sync import SyncService
from connectors.tiktok import TikTokConnector
from connectors.tokens import ConnectionStore, TokenCipher
from kpi_engine.db import make_engine
from kpi_engine.organisation import load_organisation
from tests import faketiktok
from tests.shopsync import SECRET


def main(fake_url: str, db_url: str, config: str, since: str) -> None:
    clock = SystemClock()
    engine = make_engine(db_url)
    tiktok = TikTokConnector(
        faketiktok.APP_KEY, faketiktok.APP_SECRET, clock, api_url=fake_url, auth_url=fake_url
    )
    store = ConnectionStore(engine, TokenCipher(SECRET))
    sync = SyncService(
        engine, load_organisation(Path(config)), {"tiktok": tiktok}, store, clock, owner="worker-1"
    )
    if since:
        outcomes = sync.backfill("tts-us-01", int(since))
    else:
        outcomes = [sync.sync("tts-us-01", "orders", int(clock.now()))]
    print(outcomes, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
