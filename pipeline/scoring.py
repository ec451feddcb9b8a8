"""Per-row word errors for the score stage; the text rules themselves live in :mod:`pipeline.text`
(re-exported here under their old import path)."""

from __future__ import annotations

from typing import Callable

from pipeline.text import (
    IGNORED_REFERENCE, NORMALIZER_NAMES, error_counts, is_scorable_reference, make_normalizer, word_errors,
)

__all__ = ["IGNORED_REFERENCE", "NORMALIZER_NAMES", "error_counts", "is_scorable_reference",
           "make_normalizer", "score_row", "word_errors"]


def score_row(row: dict, normalize: Callable[[str], str], *, compound_pairs: bool = False) -> dict:
    """``wer_errors``/``wer_words`` for a row with a reference and a transcript, else nulls
    (:func:`pipeline.text.word_errors`; ``compound_pairs`` for sets in another language than English)."""
    if row.get("reference") is None or row.get("text") is None:
        return {**row, "wer_errors": None, "wer_words": None}
    errors, words = word_errors(row["reference"], row["text"], normalize, compound_pairs=compound_pairs)
    return {**row, "wer_errors": errors, "wer_words": words}
