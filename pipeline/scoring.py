"""Word errors per row with jiwer after Whisper's text normalisation (corpus WER = Σ errors / Σ words)."""

from __future__ import annotations

from typing import Callable

import jiwer


def make_normalizer(name: str) -> Callable[[str], str]:
    """``english``: Whisper's EnglishTextNormalizer; ``basic``: its BasicTextNormalizer;
    ``none``: the text as is (words split on whitespace)."""
    if name == "english":
        from whisper_normalizer.english import EnglishTextNormalizer
        return EnglishTextNormalizer()
    if name == "basic":
        from whisper_normalizer.basic import BasicTextNormalizer
        return BasicTextNormalizer()
    if name == "none":
        return lambda text: text
    raise ValueError(f"unknown normalizer {name!r} (english, basic, none)")


def word_errors(reference: str, hypothesis: str,
                normalize: Callable[[str], str]) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after normalising both sides."""
    ref_words = normalize(reference).split()
    hyp_words = normalize(hypothesis).split()
    if not ref_words:
        return len(hyp_words), 0
    if not hyp_words:
        return len(ref_words), len(ref_words)
    out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    return out.substitutions + out.deletions + out.insertions, len(ref_words)


def score_row(row: dict, normalize: Callable[[str], str]) -> dict:
    """``wer_errors``/``wer_words`` for a row with a reference and a transcript, else nulls."""
    if row.get("reference") is None or row.get("text") is None:
        return {**row, "wer_errors": None, "wer_words": None}
    errors, words = word_errors(row["reference"], row["text"], normalize)
    return {**row, "wer_errors": errors, "wer_words": words}


def is_scorable_reference(reference: str | None, normalizer: str) -> bool:
    """Whether evaluation keeps a row: its reference normalises to words other than the
    leaderboard's ``ignore time segment in scoring`` marker."""
    if reference is None:
        return False
    text = make_normalizer(normalizer)(reference).strip()
    return bool(text) and text != "ignore time segment in scoring"
