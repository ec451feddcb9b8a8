"""The Open ASR Leaderboard's multilingual normaliser, for one language.

The leaderboard's multilingual track (``huggingface/open_asr_leaderboard``,
``normalizer/data_utils.py``: ``MultilingualNormalizer(remove_diacritics=False)`` called with
``lang=``; its base ``BasicMultilingualTextNormalizer`` lives in ``normalizer/normalizer.py``)
normalises references and predictions in these steps, applied here in the same order:

1. lower-case;
2. drop ``[...]``/``<...>`` spans and ``(...)`` spans;
3. NFKC, then every mark, symbol and punctuation character (Unicode categories ``M*``, ``S*``,
   ``P*``) becomes a space; letters keep their diacritics (``Größe`` → ``größe``);
4. lower-case again, drop whatever is neither a word character nor whitespace, collapse
   whitespace and strip;
5. join thousand groups written with a space (``10 000`` → ``10000``; one pass, left to right,
   so ``1 000 000`` becomes ``1000 000``, as the leaderboard's does);
6. spell every digit run out with ``num2words`` in the language (``21`` → ``einundzwanzig``).
   num2words' own capitals stay (German ``eine Million``), because this comes after the
   lower-casing; a number num2words cannot spell stays as digits.

``../fixtures/leaderboard-normalizer/multilingual-pairs.jsonl`` holds the leaderboard's outputs
(num2words 0.5.14) for German, French, Spanish and Portuguese.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import CONVERTER_CLASSES, num2words

_BRACKETED = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENTHESISED = re.compile(r"\(([^)]+?)\)")
_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_THOUSAND_GROUP = re.compile(r"(\d)\s+(\d{3})\b")
_DIGITS = re.compile(r"\d+")


def num2words_languages() -> frozenset[str]:
    """Language codes num2words can spell numbers in (``de``, ``fr``, ``es``, ``pt``, ...)."""
    return frozenset(CONVERTER_CLASSES)


def symbols_to_spaces(text: str) -> str:
    """NFKC, then each mark, symbol or punctuation character replaced by one space."""
    return "".join(" " if unicodedata.category(ch)[0] in "MSP" else ch
                   for ch in unicodedata.normalize("NFKC", text))


class MultilingualNormalizer:
    """``str -> str``: the leaderboard's multilingual normalisation for ``language`` (see the
    module docstring). Raises ``ValueError`` for a language num2words does not know."""

    def __init__(self, language: str) -> None:
        if language not in CONVERTER_CLASSES:
            raise ValueError(f"language {language!r}: num2words cannot spell numbers in it "
                             f"(known: {', '.join(sorted(CONVERTER_CLASSES))})")
        self.language = language

    def _spell(self, match: re.Match) -> str:
        try:
            return num2words(int(match.group()), lang=self.language)
        except Exception:  # noqa: BLE001 - the leaderboard keeps the digits on any failure
            return match.group()

    def __call__(self, text: str) -> str:
        s = text.lower()
        s = _BRACKETED.sub("", s)
        s = _PARENTHESISED.sub("", s)
        s = symbols_to_spaces(s).lower()
        s = _NOT_WORD.sub("", s)
        s = _SPACES.sub(" ", s).strip()
        s = _THOUSAND_GROUP.sub(r"\1\2", s)
        return _DIGITS.sub(self._spell, s)
