"""Text normalisation and word error counts, scored the Open ASR Leaderboard's way.

Word errors come from kaldialign's edit distance with ``merge_compounds=True`` (the leaderboard's
``normalizer/eval_utils.py``): adjacent words that concatenate to the other side's word cost
nothing, so ``white paper`` against ``whitepaper`` is 0 errors. Corpus WER = Σ errors / Σ reference
words (``batch_error_rate``), never a mean of per-utterance rates.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterable

from kaldialign import batch_error_rate

NORMALIZER_NAMES = ("leaderboard", "whisper", "english", "basic", "none")
# The leaderboard's marker for an untranscribed stretch (a NIST stm convention): never scored.
IGNORED_REFERENCE = "ignore time segment in scoring"


@functools.lru_cache(maxsize=None)
def make_normalizer(name: str) -> Callable[[str], str]:
    """The text normaliser called ``name`` (built once per process).

    * ``leaderboard``: the Open ASR Leaderboard's English normaliser
      (:class:`pipeline.evaluation.normalizer.LeaderboardNormalizer`);
    * ``whisper`` (alias ``english``): Whisper's ``EnglishTextNormalizer`` from ``whisper-normalizer``;
    * ``basic``: Whisper's ``BasicTextNormalizer`` (case and punctuation only);
    * ``none``: the text as is (words split on whitespace).

    Raises ``ValueError`` for any other name.
    """
    if name == "leaderboard":
        from pipeline.evaluation.normalizer import LeaderboardNormalizer
        return LeaderboardNormalizer()
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


def error_counts(references: Iterable[Iterable[str]], hypotheses: Iterable[Iterable[str]]) -> dict:
    """kaldialign ``batch_error_rate(refs, hyps, merge_compounds=True)`` over word sequences:
    ``{"ins", "del", "sub", "total", "ref_len", "err_rate"}`` (``err_rate`` = total / ref_len,
    ``inf`` when there are no reference words but some hypothesis words, 0.0 when neither)."""
    refs = [tuple(r) for r in references]
    hyps = [tuple(h) for h in hypotheses]
    return batch_error_rate(refs, hyps, merge_compounds=True)


def word_errors(reference: str, hypothesis: str,
                normalize: Callable[[str], str]) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after normalising both sides."""
    ref_words = normalize(reference).split()
    hyp_words = normalize(hypothesis).split()
    counts = error_counts([ref_words], [hyp_words])
    return int(counts["total"]), len(ref_words)


def score_row(row: dict, normalize: Callable[[str], str]) -> dict:
    """``wer_errors``/``wer_words`` for a row with a reference and a transcript, else nulls."""
    if row.get("reference") is None or row.get("text") is None:
        return {**row, "wer_errors": None, "wer_words": None}
    errors, words = word_errors(row["reference"], row["text"], normalize)
    return {**row, "wer_errors": errors, "wer_words": words}


def is_scorable_reference(reference: str | None, normalizer: str) -> bool:
    """Whether evaluation keeps a row (the leaderboard's ``is_target_text_in_range``, applied to
    the reference normalised with ``normalizer``): it has a reference that normalises to words
    other than ``ignore time segment in scoring``. ``...``, ``[noise]`` or ``um`` give ``False``
    under ``leaderboard``; ``None`` always does. Raises ``ValueError`` for an unknown normaliser."""
    normalize = make_normalizer(normalizer)
    if reference is None:
        return False
    text = " ".join(normalize(reference).split())
    return bool(text) and text != IGNORED_REFERENCE
