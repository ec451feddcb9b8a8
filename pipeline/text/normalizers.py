"""The text normalisers by name and language, and which references evaluation can score."""

from __future__ import annotations

import functools
from typing import Callable

NORMALIZER_NAMES = ("leaderboard", "whisper", "english", "basic", "none")
ENGLISH = "en"
# The leaderboard's marker for an untranscribed stretch (a NIST stm convention): never scored.
IGNORED_REFERENCE = "ignore time segment in scoring"


def is_english(language: str | None) -> bool:
    """``None`` and ``"en"`` mean English (the default everywhere)."""
    return language in (None, ENGLISH)


def make_normalizer(name: str, language: str | None = None) -> Callable[[str], str]:
    """The text normaliser called ``name`` (built once per process and language).

    * ``leaderboard``: the Open ASR Leaderboard's normaliser for ``language``: its English one
      (:class:`pipeline.text.english.LeaderboardNormalizer`) for ``None`` or ``"en"``, its
      multilingual one (:class:`pipeline.text.multilingual.MultilingualNormalizer`) otherwise;
    * ``whisper`` (alias ``english``): Whisper's ``EnglishTextNormalizer`` from ``whisper-normalizer``;
    * ``basic``: Whisper's ``BasicTextNormalizer`` (case and punctuation only);
    * ``none``: the text as is (words split on whitespace).

    ``language`` (ISO 639-1) only changes ``leaderboard``. Raises ``ValueError`` for any other
    name, or for a language the multilingual normaliser cannot spell numbers in.
    """
    return _build(name, None if is_english(language) else language)


@functools.lru_cache(maxsize=None)
def _build(name: str, language: str | None) -> Callable[[str], str]:
    if name == "leaderboard":
        if is_english(language):
            from pipeline.text.english import LeaderboardNormalizer
            return LeaderboardNormalizer()
        from pipeline.text.multilingual import MultilingualNormalizer
        return MultilingualNormalizer(language)
    if name in ("whisper", "english"):
        from whisper_normalizer.english import EnglishTextNormalizer
        return EnglishTextNormalizer()
    if name == "basic":
        from whisper_normalizer.basic import BasicTextNormalizer
        return BasicTextNormalizer()
    if name == "none":
        return _identity
    raise ValueError(f"unknown normalizer {name!r} ({', '.join(NORMALIZER_NAMES)})")


def _identity(text: str) -> str:
    return text


def is_scorable_reference(reference: str | None, normalizer: str, language: str | None = None) -> bool:
    """Whether evaluation keeps a row, by the leaderboard's ``is_target_text_in_range``: it has
    a reference, other than ``ignore time segment in scoring``, that is not empty.

    English sets test the reference normalised with ``normalizer`` (the leaderboard's
    ``prepare_data``: ``um [noise]`` is dropped, ``...`` normalises to ``.`` and is kept); other
    languages test the raw reference (its multilingual runner filters before normalising, so a
    reference that normalises to nothing is kept and its hypothesis words count as insertions).
    ``None`` is never kept. Raises ``ValueError`` for an unknown normaliser.
    """
    normalize = make_normalizer(normalizer, language if normalizer == "leaderboard" else None)
    if reference is None:
        return False
    text = " ".join((normalize(reference) if is_english(language) else reference).split())
    return bool(text) and text != IGNORED_REFERENCE
