"""Resident memory of `kpibot serve` with all three chat platforms on, under a soak of signed
deliveries (issue 20, item 2).

    .venv/bin/python -m bench.memory_bench [--minutes 10] [--concurrency 64] [--bare-seconds 60]

`kpibot serve` runs as a user runs it, a fresh process on a demo workspace (`kpibot demo`,
SQLite, the clock pinned), with Slack (Events API), Feishu (event webhook, encrypted and signed)
and DingTalk (robot HTTP callback) configured against fake platforms on 127.0.0.1 (tests/fake*).
`--concurrency` clients post signed deliveries of "今天GMV多少" for `--minutes`, in turn on each
platform, from the demo people who have that platform, every other one from a chat the server
has never seen (a new direct chat: what grows per-chat state). The replies go through the outbox
to the fakes. The server's resident set (VmRSS of its process and any children) is sampled
every second; printed: RSS over the run, its peak (VmHWM), the growth between the run's halves
and the slope over the second half (a server that levels off grows by ~0 MB/min there).

The comparison point, measured in the same run: a bare FastAPI app (one POST endpoint answering
`{}`) under the same uvicorn settings, loaded the same way for `--bare-seconds`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.dingtalk.inbound import callback_sign
from adapters.feishu.inbound import signature as feishu_signature
from bot.cli import SERVE_LOOP
from kpi_engine.clock import system_clock
from tests.fakedingtalk import FakeDingTalk
from tests.fakefeishu import TENANT, FakeFeishu
from tests.fakeslack import TEAM, FakeSlack, event_body, signed_headers

KPIBOT = str(Path(sys.executable).parent / "kpibot")
NOW = "2026-11-24T10:30"
TEXT = "今天GMV多少"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
FEISHU_KEY, FEISHU_TOKEN = "kpibot-bench-encrypt-key", "v-token-kpibot-bench"
DINGTALK_SECRET = "dingtalk-app-secret-for-bench"
Delivery = tuple[str, bytes, dict[str, str]]  # path, body, headers


# The comparison point: a FastAPI app with one endpoint answering `{}`, run the way `kpibot
# serve` runs its app (uvicorn.run with host, port, log level and event loop), importing
# nothing else.
BARE = f"""
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.post("/{{path:path}}")
def receive(path: str) -> dict:
    return {{}}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop={SERVE_LOOP!r})
"""


# -- signed deliveries ------------------------------------------------------------------------


def slack(user: str, chat: str) -> Delivery:
    ts = f"{system_clock():.6f}"
    event = {"type": "message", "channel": chat, "user": user, "text": TEXT, "ts": ts,
             "event_ts": ts, "channel_type": "im", "team": TEAM}  # fmt: skip
    body = event_body(event, f"Ev{uuid.uuid4().hex[:16].upper()}")
    return "/slack/events", body, signed_headers(SLACK_SECRET, body, "application/json")


def feishu(open_id: str, chat: str) -> Delivery:
    now = system_clock()
    payload = {
        "schema": "2.0",
        "header": {"event_id": uuid.uuid4().hex, "event_type": "im.message.receive_v1",
                   "create_time": str(int(now * 1000)), "token": FEISHU_TOKEN,
                   "app_id": "cli_bench", "tenant_key": TENANT},
        "event": {
            "sender": {"sender_id": {"open_id": open_id}, "sender_type": "user",
                       "tenant_key": TENANT},
            "message": {"message_id": f"om_{uuid.uuid4().hex[:24]}", "chat_id": chat,
                        "chat_type": "p2p", "message_type": "text",
                        "content": json.dumps({"text": TEXT}, ensure_ascii=False),
                        "create_time": str(int(now * 1000))},
        },
    }  # fmt: skip
    plain = json.dumps(payload, ensure_ascii=False).encode()
    pad = 16 - len(plain) % 16
    iv = os.urandom(16)
    key = hashlib.sha256(FEISHU_KEY.encode()).digest()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    body = json.dumps({"encrypt": base64.b64encode(iv + sealed).decode()}).encode()
    timestamp, nonce = str(int(now)), uuid.uuid4().hex[:12]
    return (
        "/feishu/events",
        body,
        {
            "Content-Type": "application/json",
            "X-Lark-Request-Timestamp": timestamp,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": feishu_signature(timestamp, nonce, FEISHU_KEY, body),
        },
    )


def dingtalk(staff_id: str, chat: str) -> Delivery:
    now = int(system_clock() * 1000)
    payload = {
        "conversationId": chat, "atUsers": [], "chatbotCorpId": "dingcorp",
        "chatbotUserId": "$:LWCP_v1:$bot", "msgId": f"msg{uuid.uuid4().hex}",
        "senderNick": "bench", "isAdmin": False, "senderStaffId": staff_id,
        "sessionWebhookExpiredTime": now + 5_400_000, "createAt": now,
        "senderCorpId": "dingcorp", "conversationType": "1", "senderId": "$:LWCP_v1:$s",
        "isInAtList": False, "robotCode": "dingrobot", "msgtype": "text",
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
        "text": {"content": f" {TEXT}"},
    }  # fmt: skip
    stamp = str(now)
    return (
        "/dingtalk/robot",
        json.dumps(payload, ensure_ascii=False).encode(),
        {
            "Content-Type": "application/json",
            "timestamp": stamp,
            "sign": callback_sign(DINGTALK_SECRET, stamp),
        },
    )


def deliveries(config: Path) -> Callable[[int], Delivery]:
    """The n-th delivery: platforms in turn, the demo people who have each in turn, and every
    other one from a direct chat never seen before."""
    import yaml

    people = yaml.safe_load((config / "people.yaml").read_text(encoding="utf-8"))["people"]
    chats = [p.get("chat") or {} for p in people]
    makers: list[tuple[Callable[[str, str], Delivery], list[str], Callable[[str, int], str]]] = [
        (slack, [c["slack"] for c in chats if c.get("slack")], lambda who, n: f"D{n}"),
        (feishu, [c["feishu"] for c in chats if c.get("feishu")], lambda who, n: f"oc_p2p_{n}"),
        (dingtalk, [c["dingtalk"] for c in chats if c.get("dingtalk")], lambda who, n: f"cid{n}"),
    ]

    def nth(n: int) -> Delivery:
        make, who, chat_of = makers[n % 3]
        person = who[(n // 3) % len(who)]
        chat = chat_of(person, n) if n % 2 else chat_of(person, (n // 3) % len(who))
        return make(person, chat)

    return nth


# -- the server under test --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_kb(pid: int) -> int:
    """VmRSS of `pid` and its descendants, in kB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        total += status_kb(current, "VmRSS")
    return total


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextmanager
def serving(
    argv: list[str], env: dict[str, str], port: int, cwd: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `argv` until the port answers; stop it afterwards."""
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{argv[0]} exited:\n{process.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{argv[0]} did not listen on port {port}") from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Sample(NamedTuple):
    """The server's memory at one moment of the soak (kB)."""

    at: float  # seconds since the soak started
    rss: int  # VmRSS of the server and its children
    anon: int  # the server's RssAnon (its heap: Python objects, SQLite's page cache)
    file: int  # the server's RssFile (shared libraries, the SQLite file mapped for reading)
    high: int  # the server's VmHWM: its peak RSS so far
    sent: int  # deliveries answered so far


def sample(pid: int, at: float, sent: int) -> Sample:
    anon, file, high = (status_kb(pid, f) for f in ("RssAnon", "RssFile", "VmHWM"))
    return Sample(at, tree_rss_kb(pid), anon, file, high, sent)


def serve_env(
    config: Path, database_url: str, cache: Path, *, slack: tuple[str, str], feishu: str
) -> dict[str, str]:
    """The environment of a `kpibot serve` on the workspace (`config`, `database_url`, its clock
    pinned at NOW) with Slack (`slack`: the fake's bot token and API address) and Feishu
    (`feishu`: the fake's address) connected to the fakes."""
    return {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "KPIBOT_CONFIG_DIR": str(config),
        "KPIBOT_DATABASE_URL": database_url,
        "KPIBOT_CACHE_DIR": str(cache),
        "KPIBOT_NOW": NOW,
        "KPIBOT_LOG_LEVEL": "WARNING",
        "SLACK_BOT_TOKEN": slack[0],
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "KPIBOT_SLACK_API_URL": slack[1],
        "FEISHU_APP_ID": "cli_bench",
        "FEISHU_APP_SECRET": "secret",
        "FEISHU_ENCRYPT_KEY": FEISHU_KEY,
        "FEISHU_VERIFICATION_TOKEN": FEISHU_TOKEN,
        "KPIBOT_FEISHU_DOMAIN": feishu,
    }


def post(connection: HTTPConnection, port: int, delivery: Delivery) -> tuple[int, HTTPConnection]:
    """POST one delivery and read the answer: its HTTP status, and the connection to use next
    (status 0 and a fresh connection when this one failed)."""
    path, body, headers = delivery
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, connection
    except OSError:
        connection.close()
        return 0, HTTPConnection("127.0.0.1", port, timeout=60)


class Soak:
    """`concurrency` clients posting deliveries to `port` until stopped; RSS sampled."""

    def __init__(self, port: int, make: Callable[[int], Delivery], concurrency: int) -> None:
        self.port = port
        self.make = make
        self.concurrency = concurrency
        self.numbers = itertools.count()
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def client(self) -> None:
        connection = HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.stop.is_set():
            with self.lock:
                n = next(self.numbers)
            status, connection = post(connection, self.port, self.make(n))
            with self.lock:
                self.sent += 1
                self.statuses[status] = self.statuses.get(status, 0) + 1
        connection.close()

    def run(self, pid: int, seconds: float) -> list[Sample]:
        """RSS sampled every half second while the clients post."""
        threads = [
            threading.Thread(target=self.client, daemon=True) for _ in range(self.concurrency)
        ]
        started = time.monotonic()
        samples = [sample(pid, 0.0, 0)]
        for thread in threads:
            thread.start()
        while (elapsed := time.monotonic() - started) < seconds:
            time.sleep(min(0.5, max(0.0, seconds - elapsed)))
            samples.append(sample(pid, time.monotonic() - started, self.sent))
        self.stop.set()
        for thread in threads:
            thread.join(60)
        return samples


def slope_mb_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of RSS against time, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [s.at for s in samples]
    rs = [s.rss / 1024 for s in samples]
    mean_t, mean_r = sum(ts) / len(ts), sum(rs) / len(rs)
    var = sum((t - mean_t) ** 2 for t in ts)
    return (
        0.0
        if var == 0
        else 60 * sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, rs, strict=True)) / var
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--concurrency", type=int, default=64, help="clients posting at once")
    parser.add_argument("--bare-seconds", type=float, default=60.0, help="load on the bare app")
    parser.add_argument("--days", type=int, default=30, help="days of data in the workspace")
    parser.add_argument(
        "--kpibot-from",
        help="run `kpibot` from this source tree instead (e.g. an earlier commit, from `git "
        "archive`), to measure before and after a change",
    )
    options = parser.parse_args()
    kpibot, cwd = [KPIBOT], None
    if options.kpibot_from:
        kpibot = [sys.executable, "-c", "from bot.cli import main; main()"]
        cwd = str(Path(options.kpibot_from).resolve())
    seconds = options.minutes * 60

    with tempfile.TemporaryDirectory(prefix="kpibot-memory-") as tmp, ExitStack() as stack:
        workspace = Path(tmp) / "demo"
        subprocess.run(
            [*kpibot, "demo", "--dir", str(workspace), "--days", str(options.days), "--no-chat",
             "--now", NOW],
            check=True, capture_output=True, cwd=cwd,
        )  # fmt: skip
        fake_slack = stack.enter_context(FakeSlack())
        fake_feishu = stack.enter_context(FakeFeishu())
        fake_dingtalk = stack.enter_context(FakeDingTalk())
        env = {
            **serve_env(
                workspace / "config",
                f"sqlite:///{workspace / 'kpibot.db'}",
                Path(tmp) / "cache",
                slack=(fake_slack.token, fake_slack.base_url),
                feishu=fake_feishu.url,
            ),
            "DINGTALK_CLIENT_ID": "dingappkey",
            "DINGTALK_CLIENT_SECRET": DINGTALK_SECRET,
            "DINGTALK_ROBOT_CODE": "dingrobot",
            "DINGTALK_CONNECTION": "http",
            "KPIBOT_DINGTALK_API_URL": fake_dingtalk.url,
            "KPIBOT_DINGTALK_OAPI_URL": fake_dingtalk.url,
        }
        make = deliveries(workspace / "config")

        port = free_port()
        with serving([sys.executable, "-c", BARE, str(port)], env, port) as bare:
            bare_idle = tree_rss_kb(bare.pid)
            bare_soak = Soak(port, make, options.concurrency)
            bare_samples = bare_soak.run(bare.pid, options.bare_seconds)
            bare_peak = status_kb(bare.pid, "VmHWM")

        port = free_port()
        with serving([*kpibot, "serve", "--port", str(port)], env, port, cwd) as server:
            idle = tree_rss_kb(server.pid)
            soak = Soak(port, make, options.concurrency)
            samples = soak.run(server.pid, seconds)
            peak = status_kb(server.pid, "VmHWM")
            time.sleep(1)
            settled = tree_rss_kb(server.pid)
            parts = {f: status_kb(server.pid, f) for f in ("RssAnon", "RssFile", "RssShmem")}

        replies = (
            len(fake_slack.calls_to("chat.postMessage")),
            len(fake_feishu.messages),
            len(fake_dingtalk.messages),
        )

    mb = 1024
    print(
        f"memory soak, {options.concurrency} concurrent clients; demo workspace of "
        f"{options.days} days (SQLite); RSS of the server process (and any children)"
    )
    print(f"bare FastAPI endpoint (comparison point), {options.bare_seconds:.0f} s: idle "
          f"{bare_idle / mb:.0f} MB, peak {bare_peak / mb:.0f} MB, "
          f"{bare_soak.sent:,} requests")  # fmt: skip
    print(f"kpibot serve, {options.minutes:g} min, Slack + Feishu + DingTalk on: idle "
          f"{idle / mb:.0f} MB, peak {peak / mb:.0f} MB (VmHWM), after the soak "
          f"{settled / mb:.0f} MB; ratio peak {peak / max(bare_peak, 1):.1f}× bare; "
          "target ≤ 300 MB peak")  # fmt: skip
    print(
        "  of which, after the soak: "
        + ", ".join(f"{name} {kb / mb:.0f} MB" for name, kb in parts.items())
        + " (RssFile: shared libraries and the SQLite file mapped for reading)"
    )
    print(f"deliveries answered: {soak.sent:,} ({soak.sent / seconds:.0f}/s), HTTP statuses "
          f"{dict(sorted(soak.statuses.items()))}; replies at the fakes: Slack {replies[0]:,}, "
          f"Feishu {replies[1]:,}, DingTalk {replies[2]:,}")  # fmt: skip
    print("RSS over the soak (every tenth of it):")
    step = max(1, (len(samples) - 1) // 10)
    print("     time    RSS  (anon + file)  peak so far  deliveries answered")
    for found in samples[::step]:
        print(
            f"  {found.at:5.0f} s  {found.rss / mb:4.0f} MB  ({found.anon / mb:4.0f} + "
            f"{found.file / mb:3.0f})  {found.high / mb:7.0f} MB  {found.sent:>9,}"
        )
    top = max(samples, key=lambda found: found.rss)
    print(
        f"  largest sample at {top.at:.0f} s: {top.rss / mb:.0f} MB ({top.anon / mb:.0f} MB "
        f"anon + {top.file / mb:.0f} MB file)"
    )
    half = len(samples) // 2
    first, second = samples[1 : half + 1], samples[half:]
    growth = (max(s.rss for s in second) - max(s.rss for s in first)) / mb if first else 0.0
    print(f"growth of the peak, second half vs first: {growth:+.1f} MB; slope over the second "
          f"half: {slope_mb_per_min(second):+.2f} MB/min")  # fmt: skip
    if bare_samples:
        print(f"bare endpoint slope over its run: {slope_mb_per_min(bare_samples):+.2f} MB/min")


if __name__ == "__main__":
    main()
