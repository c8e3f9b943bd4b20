"""Names in pinyin without pypinyin's whole phrase dictionary (bot/chat/pinyin.py): the small
table reads as the whole dictionary does, its words are the installed pypinyin's, and it holds
every word the installed pypinyin reads unlike its characters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.chat.pinyin import TABLE

ROOT = Path(__file__).resolve().parent.parent
# Names and words where the phrase dictionary decides a polyphonic character's reading, and
# names of the demo workspace's kind. Read by pypinyin with its whole dictionary (a process of
# its own) and by `syllables`.
TEXTS = ["长春", "朝阳", "重庆", "长江", "银行", "曾伟", "单丽", "解放", "乐山", "李娜", "王芳",
         "马库斯", "艾米丽", "张伟长", "人行道", "上行下效", "东躲西藏", "一朝天子一朝臣",
         "郑重阳", "严重阳", "查理", "朴树"]  # fmt: skip


def read(code: str) -> Any:
    """What `code`, run in a fresh interpreter with TEXTS as its argument, prints (JSON)."""
    env = {k: v for k, v in os.environ.items() if k != "PYPINYIN_NO_PHRASES"}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(TEXTS, ensure_ascii=False)],
        check=True, capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_the_small_table_reads_names_as_the_whole_dictionary_does() -> None:
    whole = read(
        "import json, sys; from pypinyin import lazy_pinyin; "
        "print(json.dumps([lazy_pinyin(t) for t in json.loads(sys.argv[1])]))"
    )
    ours = read(
        "import json, sys; from bot.chat.pinyin import syllables; "
        "readings = [syllables(t) for t in json.loads(sys.argv[1])]; "
        "import pypinyin.constants as c; "
        "assert len(c.PHRASES_DICT) < 5000, 'the whole dictionary was loaded'; "
        "print(json.dumps(readings))"
    )
    assert ours == whole
    assert dict(zip(TEXTS, ours, strict=True))["长春"] == ["chang", "chun"]


def test_the_table_holds_every_word_the_installed_pypinyin_reads_unlike_its_characters() -> None:
    """After a pypinyin upgrade that changes its dictionary this fails until
    `scripts/pinyin_phrases.py` is run again."""
    code = (
        "import json; from pypinyin.phrases_dict import phrases_dict as d; "
        "from pypinyin.pinyin_dict import pinyin_dict as p; "
        "from pypinyin.contrib.tone_convert import to_normal as n; "
        "own = lambda c: n(p[ord(c)].split(',')[0]) if ord(c) in p else None; "
        "t = json.load(open('bot/chat/pinyin_phrases.json', encoding='utf-8')); "
        "print(json.dumps({'changed': [w for w in t if d.get(w) != t[w]], "
        "'missing': [w for w, r in d.items() if w not in t and (len(r) != len(w) or "
        "any(own(c) != n(x[0]) for c, x in zip(w, r)))], 'size': len(t)}))"
    )
    found = read(code)
    assert found == {"changed": [], "missing": [], "size": len(json.loads(
        TABLE.read_text(encoding="utf-8")))}  # fmt: skip
    assert 3_000 < found["size"] < 6_000
