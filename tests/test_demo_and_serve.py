"""`kpibot demo` and `kpibot serve` as a user runs them: real processes, real files, real ports."""

from __future__ import annotations

import json
import os
import pty
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

KPIBOT = str(Path(sys.executable).parent / "kpibot")


def test_demo_creates_a_workspace_and_reuses_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [KPIBOT, "demo", "--days", "5"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,  # not a terminal: no console chat at the end
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    workspace = tmp_path / "kpibot-demo"
    assert f"Created the demo workspace {workspace}" in result.stdout
    assert "orders_revisions.csv" in result.stdout and "revised" in result.stdout
    assert f"export KPIBOT_DATABASE_URL=sqlite:///{workspace / 'kpibot.db'}" in result.stdout
    assert "kpibot scorecard li.na" in result.stdout
    with sqlite3.connect(workspace / "kpibot.db") as conn:
        orders = conn.execute("SELECT count(*), count(DISTINCT shop_id) FROM orders").fetchone()
        revised = conn.execute("SELECT count(*) FROM orders WHERE revision > 1").fetchone()[0]
        currencies = {row[0] for row in conn.execute("SELECT DISTINCT currency FROM orders")}
    assert orders[0] > 1000 and orders[1] == 3
    assert revised > 0
    assert currencies == {"USD", "GBP", "JPY"}

    check = subprocess.run(
        [KPIBOT, "config", "check", str(workspace / "config")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0 and "People (17)" in check.stdout

    again = subprocess.run(
        [KPIBOT, "demo", "--days", "5"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,  # not a terminal: no console chat at the end
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0
    assert "Using the existing demo workspace" in again.stdout


def test_a_demo_from_a_template_answers_customer_service(tmp_path: Path) -> None:
    """`kpibot demo --template`: the template's organisation with demo data, imported
    metrics included: the agent's first response time has a value, a target and a score."""
    now = "2026-11-20T10:30"
    workspace = tmp_path / "live"
    run = [KPIBOT, "demo", "--dir", str(workspace), "--days", "20", "--now", now]
    result = subprocess.run(
        [*run, "--template", "tiktok-live-team"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert 'kpibot ask --as cs.a "我的首次回复时间"' in result.stdout
    env = {
        **os.environ,
        "KPIBOT_CONFIG_DIR": str(workspace / "config"),
        "KPIBOT_DATABASE_URL": f"sqlite:///{workspace / 'kpibot.db'}",
    }

    def kpibot(*args: str) -> str:
        done = subprocess.run(
            [KPIBOT, *args, "--now", now], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    answer = kpibot("ask", "--as", "cs.a", "我的首次回复时间")
    assert "本月 (2026-11) · 首次回复时间" in answer, answer
    assert "目标    60 秒" in answer and "完成率  —" not in answer, answer
    card = kpibot("scorecard", "cs.a")
    assert "first_response_seconds" in card and "target 60 s" in card, card
    unknown = subprocess.run(
        [*run[:2], "--dir", str(tmp_path / "other"), "--template", "tiktok"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "unknown template 'tiktok'" in unknown.stderr


def test_the_demo_ends_in_the_console_chat(tmp_path: Path) -> None:
    # A terminal on stdin, as when a person runs it: the demo then chats as the first streamer.
    master, slave = pty.openpty()
    os.write(master, "今天GMV多少\nhelp\n\n".encode())
    result = subprocess.run(
        [KPIBOT, "demo", "--days", "3"],
        cwd=tmp_path,
        stdin=slave,
        capture_output=True,
        text=True,
        timeout=300,
    )
    os.close(slave)
    os.close(master)
    assert result.returncode == 0, result.stderr
    assert "Chatting as 李娜 (li.na):" in result.stdout
    assert "李娜 · 今天" in result.stdout and "成交额" in result.stdout and "目标" in result.stdout
    assert "You can ask me, for example:" in result.stdout  # "help" said in English: English
    ask = subprocess.run(
        [KPIBOT, "ask", "--as", "li.na", "--json", "my GMV today"],
        env={
            **os.environ,
            "KPIBOT_CONFIG_DIR": str(tmp_path / "kpibot-demo" / "config"),
            "KPIBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'kpibot-demo' / 'kpibot.db'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ask.returncode == 0, ask.stderr
    reply = json.loads(ask.stdout)
    assert reply["language"] == "en" and reply["private"] is False  # a direct chat
    assert reply["fields"][0]["label"] == "Actual" and reply["fields"][0]["value"].endswith("CNY")


def test_generate_only_writes_large_config_and_data(tmp_path: Path) -> None:
    out = tmp_path / "large"
    result = subprocess.run(
        [KPIBOT, "demo", "--generate-only", "--scale", "large", "--days", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    header = (out / "data" / "orders.csv").open(encoding="utf-8").readline().strip()
    assert header.startswith("platform,shop_id,order_id,status")
    rows = sum(1 for _ in (out / "data" / "orders.csv").open(encoding="utf-8")) - 1
    assert 20_000 < rows < 40_000  # ~27,400 a day at the large scale
    check = subprocess.run(
        [KPIBOT, "config", "check", str(out / "config")], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0 and "People (2000)" in check.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_health_and_import(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "KPIBOT_CONFIG_DIR": str(Path(__file__).parent.parent / "config" / "example"),
        "KPIBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "KPIBOT_API_KEY": "k",
    }
    server = subprocess.Popen(
        [KPIBOT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # start-up on a loaded machine
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    assert json.load(response) == {"status": "ok"}
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail("kpibot serve did not answer")
        body = b"date,currency,quote,rate\n2026-11-20,USD,CNY,7.1\n"
        request = urllib.request.Request(
            f"{base}/api/v1/import/fx_rates",
            data=body,
            method="POST",
            headers={"X-API-Key": "k", "Content-Type": "text/csv"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["inserted"] == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
