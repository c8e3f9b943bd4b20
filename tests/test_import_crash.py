"""`kpibot import` killed with SIGKILL while its forked parser is streaming rows: the parser
exits by itself instead of waiting for ever on a pipe nobody reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

from tests.conftest import EXAMPLE_CONFIG
from tests.test_import import ORDER_HEADER, write
from tests.waiting import wait_for

ROWS = 60_000  # a dozen chunks of parsed rows: far more than a pipe holds


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def ended(pid: int) -> bool:
    """Has `pid` exited (a zombie waiting for whoever inherited it counts)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_the_parser_of_a_killed_import_exits(db_url: str, engine: Engine, tmp_path: Path) -> None:
    rows = [
        f"K{i},tiktok,tts-us-01,UNPAID,USD,1795500000,,1795500100,{i}.00,{i}.00,,,"
        for i in range(ROWS)
    ]
    file = write(tmp_path / "orders.csv", ORDER_HEADER, *rows)
    kpibot = Path(sys.executable).parent / "kpibot"
    env = {
        **os.environ,
        "KPIBOT_DATABASE_URL": db_url,
        "KPIBOT_CONFIG_DIR": str(EXAMPLE_CONFIG),
    }
    importer = subprocess.Popen(
        [str(kpibot), "import", "orders", str(file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parser: list[int] = []
    try:

        def forked() -> bool:
            assert importer.poll() is None, "the import ended before its parser was seen"
            parser[:] = children(importer.pid)
            return bool(parser)

        wait_for(forked, "the import's parser process", timeout=60)
        importer.send_signal(signal.SIGKILL)
        importer.wait()
        wait_for(lambda: ended(parser[0]), "the orphaned parser to exit", timeout=30)
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.wait()
        for pid in parser:
            if not ended(pid):
                os.kill(pid, signal.SIGKILL)
    with engine.connect() as conn:  # and the killed import left nothing behind
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == 0
