"""The Open ASR Leaderboard's English text normaliser, built on the ``whisper-normalizer`` package.

The leaderboard (``huggingface/open_asr_leaderboard``, ``normalizer/normalizer.py``) scores with
Whisper's English normaliser plus its own rules; this module applies the same steps in the same
order, with Whisper's number normaliser and symbol stripper taken from ``whisper-normalizer`` and the
leaderboard's tables held as data under ``pipeline/text/data/``:

1. lower-case; drop ``[...]``/``<...>`` and ``(...)`` spans; drop fillers (``fillers``: Whisper's
   six plus ``ah``, ``huh``, ``uhm``, ``umm``, ...); no space before an apostrophe;
2. contractions and titles (``contractions``); ``'s`` becomes ``is`` only after a pronoun or
   question word (``it's`` → ``it is``, ``john's`` → ``john s``);
3. commas between digits and periods not followed by a digit removed; symbols and diacritics
   stripped except ``. % $ ¢ € £``;
4. compounds joined (``compounds``: ``wi fi`` → ``wifi``, ``all right`` → ``alright``);
5. Whisper's number normaliser (``twenty five percent`` → ``25%``);
6. British → American spellings (``spellings.json``: Whisper's list with its slips corrected, plus
   ``ok`` → ``okay``); first-name variants (``names.json``: ``stephen`` → ``steven``);
7. acronyms: a run of one-character words is joined (``b b c`` → ``bbc``, ``5 g`` → ``5g``); a run
   holding ``a`` or ``i`` needs three or more;
8. currency/period/percent signs not attached to a number removed; whitespace collapsed.

Spaces are the leaderboard's to the character: the output is never stripped, so a sign removed
at the very start or end leaves a space there (``"$ sign"`` → ``" sign"``, ``"100 %"`` →
``"100 "``), and ellipses get no rule of their own (the leaderboard's current normaliser has
none): each period of ``...`` is a period, so ``"...so"`` → ``" so"``, ``"so..."`` → ``"so ."``
and a reference ``"..."`` → ``"."`` (one word, which the leaderboard scores).
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

from whisper_normalizer.basic import remove_symbols_and_diacritics
from whisper_normalizer.english import EnglishNumberNormalizer

NUMERIC_SYMBOLS = ".%$¢€£"


@functools.lru_cache(maxsize=None)
def load_table(name: str):
    """A JSON table shipped in ``pipeline/text/data/`` (``spellings``, ``names``, ``leaderboard_rules``)."""
    text = resources.files("pipeline.text").joinpath("data", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def join_acronyms(text: str, common_words: frozenset[str] = frozenset({"a", "i"})) -> str:
    """Join runs of one-character alphanumeric words: ``"b b c"`` → ``"bbc"``.

    A run of two is enough unless it holds one of ``common_words`` (``a``, ``i``), which need
    three or more, so ``"a b"`` and ``"i m"`` stay apart while ``"a b c"`` becomes ``"abc"``.
    """
    words = text.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and len(words[j]) == 1 and words[j].isalnum():
            j += 1
        if j == i:
            out.append(words[i])
            i += 1
            continue
        run = words[i:j]
        needed = 3 if common_words.intersection(run) else 2
        out.extend(["".join(run)] if len(run) >= needed else run)
        i = j
    return " ".join(out)


class LeaderboardNormalizer:
    """``str -> str``: the leaderboard's English normalisation (see the module docstring)."""

    def __init__(self) -> None:
        rules = load_table("leaderboard_rules")
        self.fillers = re.compile(r"\b(" + "|".join(map(re.escape, rules["fillers"])) + r")\b")
        self.contractions = [(re.compile(p), r) for p, r in rules["contractions"]]
        self.compounds = [(re.compile(p), r) for p, r in rules["compounds"]]
        self.common_words = frozenset(rules["acronym_common_words"])
        self.spellings: dict[str, str] = load_table("spellings")
        self.names: dict[str, str] = load_table("names")
        self.numbers = EnglishNumberNormalizer()

    def _map_words(self, text: str, table: dict[str, str]) -> str:
        return " ".join(table.get(word, word) for word in text.split())

    def __call__(self, text: str) -> str:
        s = text.lower()
        s = re.sub(r"[<\[][^>\]]*[>\]]", "", s)
        s = re.sub(r"\(([^)]+?)\)", "", s)
        s = self.fillers.sub("", s)
        s = re.sub(r"\s+'", "'", s)
        for pattern, replacement in self.contractions:
            s = pattern.sub(replacement, s)
        s = re.sub(r"(\d),(\d)", r"\1\2", s)
        s = re.sub(r"\.([^0-9]|$)", r" \1", s)
        s = remove_symbols_and_diacritics(s, keep=NUMERIC_SYMBOLS)
        for pattern, replacement in self.compounds:
            s = pattern.sub(replacement, s)
        s = self.numbers(s)
        s = self._map_words(s, self.spellings)
        s = self._map_words(s, self.names)
        s = join_acronyms(s, self.common_words)
        s = re.sub(r"[.$¢€£]([^0-9])", r" \1", s)
        s = re.sub(r"([^0-9])%", r"\1 ", s)
        return re.sub(r"\s+", " ", s)
