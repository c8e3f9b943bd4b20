"""Make bot/chat/pinyin_phrases.json: the words of pypinyin's phrase dictionary that kpibot
needs to read Chinese names as the whole dictionary does (bot/chat/pinyin.py says why).

    .venv/bin/python scripts/pinyin_phrases.py

Run it again after upgrading pypinyin (tests/test_pinyin.py fails until then). It starts with
the words not read as their characters are, then reads a fixed corpus with the table, as
`bot.chat.pinyin.syllables` does in a process of its own, and adds the words the whole
dictionary cut each differing text into, until no text reads differently (two or three
rounds, about a minute).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "bot" / "chat" / "pinyin_phrases.json"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤单解查仇朴区乐长朝欧阳司马诸葛上官"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰春阳长朝行重乐曾单婷雪琳子轩涵宇浩然"
# A round: read the texts (argv[2]) with the table (argv[1]) as kpibot does.
READ = (
    "import json, sys; from pathlib import Path; import bot.chat.pinyin as p; "
    "p.TABLE = Path(sys.argv[1]); "
    "texts = json.loads(Path(sys.argv[2]).read_text(encoding='utf-8')); "
    "print(json.dumps([p.syllables(t) for t in texts]))"
)


def corpus(words: list[str]) -> list[str]:
    """The texts the table must read as the whole dictionary does: every word of the dictionary,
    30,000 runs of three words (where a cut between words falls) and names: each surname
    (polyphonic ones too) with each common given-name character, and with each two of them.
    Fixed: the same every time."""
    chance = random.Random(20)
    runs = ["".join(chance.sample(words, 3)) for _ in range(30_000)]
    names = [s + one for s in SURNAMES for one in GIVEN]
    names += [s + one + two for s in SURNAMES for one in GIVEN for two in GIVEN]
    return words + runs + names


def build_table() -> dict[str, list[list[str]]]:
    if os.environ.get("PYPINYIN_NO_PHRASES"):
        raise SystemExit("run without PYPINYIN_NO_PHRASES: this needs the whole dictionary")
    from pypinyin import lazy_pinyin
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.seg.mmseg import seg

    def own(character: str) -> str | None:
        readings = pinyin_dict.get(ord(character))
        return to_normal(readings.split(",")[0]) if readings else None

    table = {
        word: readings
        for word, readings in phrases_dict.items()
        if len(readings) != len(word)
        or any(own(c) != to_normal(r[0]) for c, r in zip(word, readings, strict=False))
    }
    texts = corpus(sorted(phrases_dict))
    whole = [lazy_pinyin(text) for text in texts]
    with tempfile.TemporaryDirectory() as tmp:
        given, read = Path(tmp) / "table.json", Path(tmp) / "texts.json"
        read.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        while True:
            given.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
            readings = json.loads(
                subprocess.run(
                    [sys.executable, "-c", READ, str(given), str(read)],
                    check=True, capture_output=True, text=True, cwd=ROOT,
                ).stdout
            )  # fmt: skip
            differing = [t for t, r, w in zip(texts, readings, whole, strict=True) if r != w]
            print(f"{len(table):,} words: {len(differing):,} texts read differently")
            if not differing:
                return dict(sorted(table.items()))
            for text in differing:
                for word in seg.cut(text):
                    if word in phrases_dict:
                        table[word] = phrases_dict[word]


if __name__ == "__main__":
    made = build_table()
    TABLE.write_text(
        json.dumps(made, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n",
        encoding="utf-8",
    )
    print(f"{TABLE.relative_to(ROOT)}: {len(made):,} words")
