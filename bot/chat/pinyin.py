"""Chinese text in pinyin, for matching names typed in Latin letters ("lina" for 李娜, "makusi"
written 马库斯 for Marcus), without pypinyin's phrase dictionary in memory.

pypinyin reads a word's characters by its phrase dictionary (47,000 words) where one is found,
else each character by its most common reading. The dictionary is what makes 长春 "changchun"
rather than "zhangchun", and it costs ~45 MB in every process that answers (bench/README.md,
"Memory"). Most of its words are read exactly as their characters would be: only ~3,400 are
not, and a few hundred more matter because where one word ends decides how the next is cut.
`pinyin_phrases.json` holds just those (4,027), made by `scripts/pinyin_phrases.py` from the
installed pypinyin's own dictionary, and pypinyin runs with it instead of the whole one
(`PYPINYIN_NO_PHRASES`). A fresh interpreter that has read one name peaks at 25 MB this way,
at 68 MB with the whole dictionary.

It reads every word of the dictionary, and every text of the script's corpus, as the whole
dictionary does. On texts it was not made from (90,215 of them: the dictionary's words, runs of
three words and 20,000 names, drawn with another seed) 54 runs of idioms read differently and
no name did. What reads differently is a polyphonic character at a cut between two words, and
the readings only feed fuzzy matching of names. `tests/test_pinyin.py` checks that the table
holds what the installed pypinyin reads unlike its characters.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("pinyin_phrases.json")


@cache
def _converter() -> Callable[[str], list[str]]:
    if "pypinyin" not in sys.modules:  # else it was loaded whole already; that reads the same
        os.environ["PYPINYIN_NO_PHRASES"] = "1"
    import pypinyin

    pypinyin.load_phrases_dict(json.loads(TABLE.read_text(encoding="utf-8")))
    return pypinyin.lazy_pinyin


def syllables(text: str) -> list[str]:
    """`text`'s syllables without tones ("李娜" → ["li", "na"]); other characters as they are."""
    return _converter()(text)
