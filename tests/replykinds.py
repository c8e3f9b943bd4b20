"""Every kind of reply the bot sends, produced by the real bot on the demo data at a pinned
time, and rendered for each platform: the material of tests/test_rendering.py and of the
snapshots in docs/rendering/ (`python -m tests.replykinds docs/rendering` writes them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from adapters.console.render import render_text
from adapters.dingtalk.outbound import DingTalkAdapter
from adapters.feishu.cards import content
from adapters.slack.render import render_message
from bot.chat.messages import Mention, Reply, Target
from kpi_engine.organisation import AlertCondition, AlertRuleConfig, Organisation
from tests.test_alerts import END, LINA, NOW, Bot

WANG = "U07WANGFANG"
# A member's note with markup from all three platforms in it: it must show as typed.
HOSTILE_NOTE = (
    "加备注 <!channel> 奖金名单 <https://evil.example/login|点这里查看奖金> "
    "[点这里](https://evil.example/x) <at id=all></at> **粗体** # 标题"
)
KINDS = (
    "progress",
    "ranking",
    "why",
    "compare",
    "breakdown",
    "score",
    "help",
    "notes",
    "alerts",
    "appeals",
    "morning",
    "evening",
    "weekly",
)


def collect(engine: Engine, organisation: Organisation) -> dict[str, list[Reply]]:
    """Replies of every kind, in Chinese and English, as the bot sends them on Slack."""
    bot = Bot(engine, organisation)
    kinds: dict[str, list[Reply]] = {}

    def ask(kind: str, user: str, *texts: str) -> None:
        kinds.setdefault(kind, []).extend(bot.say(user, text) for text in texts)

    ask("progress", LINA, "今天GMV多少", "my GMV this week")
    ask("ranking", LINA, "本周排名")
    ask("ranking", WANG, "team ranking this month")
    ask("why", WANG, "为什么GMV下降了", "why did GMV drop yesterday")
    ask("compare", LINA, "本周GMV环比", "compare GMV this month")
    ask("breakdown", WANG, "本周GMV按天", "GMV by shop this week")
    ask("score", LINA, "我的绩效", "my score this month")
    ask("help", LINA, "帮助", "help")
    bot.say(WANG, HOSTILE_NOTE)
    ask("notes", WANG, "本月备注")
    rule = AlertRuleConfig(
        id="lina-gmv", scope="person:li.na", condition=AlertCondition(below=10**9)
    )
    bot.alerts.rules = {rule.id: rule}
    before = len(bot.chat.sent)
    bot.run()
    kinds["alerts"] = [reply for reply, _ in bot.chat.sent[before:]]
    ask("alerts", WANG, "告警")
    before = len(bot.chat.sent)
    bot.say(LINA, "申诉 昨天GMV 应该是12000 订单 5791234 https://seller.example/?a=1&b=2")
    kinds["appeals"] = [reply for reply, _ in bot.chat.sent[before:]]
    scheduler = bot.bot.scheduler
    for kind in ("morning", "evening", "weekly"):
        job = scheduler.jobs[f"{kind}:sz-live"]
        before = len(bot.chat.sent)
        scheduler.execute(job, job.firings(NOW - 8 * 86400, NOW)[-1])
        bot.sender.drain()
        kinds[kind] = [reply for reply, _ in bot.chat.sent[before:]]
    assert set(kinds) == set(KINDS) and all(kinds.values())
    return kinds


def for_platform(reply: Reply, organisation: Organisation, platform: str) -> Reply:
    """The reply with its mentions in `platform`'s user ids (they were collected on Slack)."""
    mentions = []
    for mention in reply.mentions:
        person = next(p for p in organisation.people.values() if p.chat.slack == mention.user)
        user = getattr(person.chat, platform)
        assert user
        mentions.append(Mention(user, mention.name))
    return replace(reply, mentions=tuple(mentions))


def dingtalk_bodies(reply: Reply, target: Target, template: bool) -> dict[str, Any]:
    """What the DingTalk adapter would send for `reply` (its message or card parameters)."""
    adapter = DingTalkAdapter(
        "app", "secret", "robot", api="http://127.0.0.1:9", oapi="http://127.0.0.1:9",
        card_template="tpl" if template else None,
    )  # fmt: skip
    rendered = adapter.render(reply, target)
    assert isinstance(rendered, dict)
    return rendered


def write(directory: Path, kinds: dict[str, list[Reply]], organisation: Organisation) -> None:
    """One Markdown file per platform showing each kind of reply as that platform gets it."""
    directory.mkdir(parents=True, exist_ok=True)
    pages: dict[str, list[str]] = {name: [] for name in ("slack", "feishu", "dingtalk", "console")}
    for kind in KINDS:
        for number, reply in enumerate(kinds[kind], start=1):
            title = f"## {kind} {number}\n"
            slack = render_message(for_platform(reply, organisation, "slack"))
            pages["slack"] += [title, "```json", json.dumps(slack, ensure_ascii=False, indent=1)]
            pages["slack"].append("```\n")
            feishu = for_platform(reply, organisation, "feishu")
            msg_type, body = content(feishu)
            pages["feishu"] += [title, f"msg_type `{msg_type}`\n", "```json"]
            pages["feishu"] += [json.dumps(json.loads(body), ensure_ascii=False, indent=1), "```\n"]
            dingtalk = for_platform(reply, organisation, "dingtalk")
            rendered = dingtalk_bodies(dingtalk, Target("dingtalk", "", "cidGroup"), True)
            params = rendered.get("card") or rendered["msgParam"]
            shown = params.get("markdown") or params.get("text") or ""
            pages["dingtalk"] += [title, f"(notification title: {params['title']})\n", shown, ""]
            pages["console"] += [title, "```", render_text(reply), "```\n"]
    intro = {
        "slack": "Block Kit payloads (`text` and `blocks`) as sent to `chat.postMessage`.",
        "feishu": "Card JSON 2.0 (or text) as sent to `im/v1/messages`.",
        "dingtalk": "The markdown DingTalk shows (card template parameter or `sampleMarkdown`),"
        " rendered below as Markdown.",
        "console": "What `kpibot chat` prints.",
    }
    for name, lines in pages.items():
        head = (
            f"# Every reply on {name}\n\n{intro[name]} Generated from the demo data by "
            "`python -m tests.replykinds docs/rendering`; see docs/rendering/README.md.\n\n"
        )
        (directory / f"{name}.md").write_text(head + "\n".join(lines), encoding="utf-8")


def main(directory: str) -> None:
    """Build a demo database in a temporary folder and write the snapshots."""
    from kpi_engine.db import make_engine, upgrade
    from kpi_engine.organisation import load_organisation
    from tests.conftest import EXAMPLE_CONFIG
    from tests.workspaces import load_demo

    organisation = load_organisation(EXAMPLE_CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/snapshots.db"
        upgrade(url)
        engine = make_engine(url)
        load_demo(engine, organisation, Path(tmp), days=10, end=END, seed=21)
        kinds = collect(engine, organisation)
        engine.dispose()
    out = Path(directory)
    write(out, kinds, organisation)
    (out / "html").mkdir(parents=True, exist_ok=True)
    screenshot(write_html(out / "html", kinds, organisation), out)


def screenshot(pages: list[Path], directory: Path) -> None:
    """PNG screenshots of the HTML pages with headless Chromium (Debian's `chromium`), when
    it is installed; trimmed to what the page shows."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed: HTML pages only")
        return
    from PIL import Image, ImageChops

    for page in pages:
        png = directory / f"{page.stem}.png"
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={png}", "--window-size=1540,3000", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with Image.open(png) as image:
            shot = image.convert("RGB")
        background = Image.new("RGB", shot.size, shot.getpixel((1, shot.height - 2)))
        box = ImageChops.difference(shot, background).getbbox()
        if box:
            shot = shot.crop((0, 0, shot.width, min(shot.height, box[3] + 16)))
        shot.save(png, optimize=True)


# -- HTML approximations (for screenshots) --------------------------------------------------------

_CSS = """
body { font-family: 'Noto Sans CJK SC', sans-serif; background: #eef0f3; margin: 16px; }
.row { display: flex; gap: 16px; align-items: flex-start; }
.col { width: 480px; } .col h2 { font-size: 14px; color: #555; margin: 0 0 6px; }
.slack { background: #fff; border-left: 4px solid #4a154b; padding: 10px 12px; font-size: 14px; }
.slack .header { font-weight: 700; font-size: 17px; margin: 4px 0 8px; }
.slack .fields { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 16px; margin: 6px 0; }
.slack .context { color: #616061; font-size: 12px; margin: 6px 0; }
.slack pre { background: #f8f8f8; border: 1px solid #ddd; padding: 6px; font-size: 12px;
  white-space: pre; overflow: hidden; }
.button { display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 3px 10px;
  margin: 4px 4px 0 0; font-size: 13px; background: #fff; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.button.danger { background: #e01e5a; color: #fff; border-color: #e01e5a; }
.feishu { background: #fff; border-radius: 8px; overflow: hidden; font-size: 14px;
  box-shadow: 0 1px 3px rgba(0,0,0,.15); }
.feishu .head { color: #fff; padding: 10px 12px; font-weight: 700; }
.feishu .body { padding: 10px 12px; } .feishu .md { margin: 6px 0; white-space: pre-wrap; }
.feishu .notation { color: #8f959e; font-size: 12px; }
.feishu .pair { display: flex; gap: 12px; } .feishu .pair > div { flex: 1; }
.feishu table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
.feishu td, .feishu th { border: 1px solid #dee0e3; padding: 3px 6px; }
.blue { background: #3370ff; } .green { background: #34c724; } .orange { background: #ff8800; }
.red { background: #f54a45; }
.dingtalk { background: #fff; border-radius: 6px; padding: 10px 12px; font-size: 14px;
  box-shadow: 0 1px 3px rgba(0,0,0,.15); } .dingtalk h4 { margin: 4px 0 8px; }
.dingtalk blockquote { color: #888; border-left: 3px solid #ddd; margin: 6px 0; padding-left: 8px; }
.dingtalk ul { margin: 4px 0; padding-left: 18px; } .mention { color: #3370ff; }
"""


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str, bold: str) -> str:
    """Already-escaped HTML with the platform's bold (and code) marks applied."""
    pattern = re.escape(bold)
    text = re.sub(rf"{pattern}(.+?){pattern}", r"<b>\1</b>", text)
    return re.sub(r"`([^`\n]+)`", r"<code>\1</code>", text)


def slack_html(payload: dict[str, Any]) -> str:
    """Block Kit, roughly as Slack shows it (its escapes are HTML's own)."""
    out = ['<div class="slack">']

    def mrkdwn(text: str) -> str:
        text = re.sub(r"<@(\w+)>", r'<span class="mention">@\1</span>', text)
        if text.startswith("```"):
            return f"<pre>{text.strip('`').strip()}</pre>"
        return _inline(text, "*").replace("\n", "<br>")

    for block in payload["blocks"]:
        kind = block["type"]
        if kind == "header":
            out.append(f'<div class="header">{_html(block["text"]["text"])}</div>')
        elif kind == "section" and "fields" in block:
            cells = "".join(f"<div>{mrkdwn(f['text'])}</div>" for f in block["fields"])
            out.append(f'<div class="fields">{cells}</div>')
        elif kind == "section":
            out.append(f"<div>{mrkdwn(block['text']['text'])}</div>")
        elif kind == "context":
            text = " ".join(mrkdwn(e["text"]) for e in block["elements"])
            out.append(f'<div class="context">{text}</div>')
        elif kind == "actions":
            out.append(
                "<div>"
                + "".join(
                    f'<span class="button {e.get("style", "")}">{_html(e["text"]["text"])}</span>'
                    for e in block["elements"]
                )
                + "</div>"
            )
    return "".join(out) + "</div>"


def feishu_html(msg_type: str, body: str) -> str:
    """A card JSON 2.0 (or a text message), roughly as Feishu shows it."""
    data = json.loads(body)
    if msg_type == "text":
        return f'<div class="feishu"><div class="body md">{_html(data["text"])}</div></div>'

    def markdown(element: dict[str, Any]) -> str:
        # The card's entities are HTML's; its `<at>` tags are the mentions.
        text = re.sub(
            r"<at id=([\w-]+)></at>", r'<span class="mention">@\1</span>', element["content"]
        )
        size = " notation" if element.get("text_size") == "notation" else ""
        return f'<div class="md{size}">{_inline(text, "**")}</div>'

    def render(element: dict[str, Any]) -> str:
        tag = element["tag"]
        if tag == "markdown":
            return markdown(element)
        if tag == "column_set":
            inner = "".join(
                "<div>" + "".join(render(e) for e in c["elements"]) + "</div>"
                for c in element["columns"]
            )
            return f'<div class="pair">{inner}</div>'
        if tag == "button":
            kind = element.get("type", "default")
            return f'<span class="button {kind}">{_html(element["text"]["content"])}</span>'
        if tag == "table":
            names = [c["name"] for c in element["columns"]]
            head = "".join(f"<th>{_html(c['display_name'])}</th>" for c in element["columns"])
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html(r.get(n, ''))}</td>" for n in names) + "</tr>"
                for r in element["rows"][: element["page_size"]]
            )
            return f"<table><tr>{head}</tr>{rows}</table>"
        return f"<div>[{tag}]</div>"

    head = ""
    if "header" in data:
        colour = data["header"]["template"]
        head = f'<div class="head {colour}">{_html(data["header"]["title"]["content"])}</div>'
    inner = "".join(render(e) for e in data["body"]["elements"])
    return f'<div class="feishu">{head}<div class="body">{inner}</div></div>'


def dingtalk_html(rendered: dict[str, Any]) -> str:
    """DingTalk markdown (and a card's buttons), roughly as DingTalk shows it."""
    params = rendered.get("card") or rendered["msgParam"]
    text = params.get("markdown") if "markdown" in params else params["text"]
    out = ['<div class="dingtalk">']
    for part in text.split("\n\n"):
        lines = [_html(line.removesuffix("  ")) for line in part.split("\n")]
        items: list[str] = []
        for line in [*lines, ""]:
            if line.startswith("- "):
                items.append(f"<li>{_inline(line[2:], '**')}</li>")
                continue
            if items:  # consecutive list items make one list
                out.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if line.startswith("#### "):
                out.append(f"<h4>{line[5:]}</h4>")
            elif line.startswith("&gt; "):
                out.append(f"<blockquote>{line[5:]}</blockquote>")
            elif line:
                out.append(f"<div>{_inline(line, '**')}</div>")
    for button in json.loads(params.get("buttons", "[]")):
        colour = "primary" if button["color"] == "blue" else ""
        out.append(f'<span class="button {colour}">{_html(button["text"])}</span>')
    return "".join(out) + "</div>"


def write_html(
    directory: Path, kinds: dict[str, list[Reply]], organisation: Organisation
) -> list[Path]:
    """One HTML page per kind of reply: its first reply on Slack, Feishu and DingTalk side by
    side (an approximation of each client, for screenshots)."""
    pages = []
    for kind in KINDS:
        reply = kinds[kind][0]
        slack = slack_html(render_message(for_platform(reply, organisation, "slack")))
        feishu = feishu_html(*content(for_platform(reply, organisation, "feishu")))
        dingtalk = dingtalk_html(
            dingtalk_bodies(
                for_platform(reply, organisation, "dingtalk"),
                Target("dingtalk", "", "cidGroup"),
                bool(reply.buttons),
            )
        )
        columns = "".join(
            f'<div class="col"><h2>{name}</h2>{html}</div>'
            for name, html in (("Slack", slack), ("Feishu / Lark", feishu), ("DingTalk", dingtalk))
        )
        page = directory / f"{kind}.html"
        page.write_text(
            f'<!doctype html><meta charset="utf-8"><style>{_CSS}</style>'
            f'<h1 style="font-size:16px">{kind}</h1><div class="row">{columns}</div>',
            encoding="utf-8",
        )
        pages.append(page)
    return pages


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/rendering")
