"""Text rules for scoring: normalisers (the leaderboard's English and multilingual ones, with
their data tables, Whisper's, basic, none), compound pairing and kaldialign word error counts.

Both the score stage of every job and ``jobs.evaluate`` use this package, so that the two agree
on the same rows. Nothing here knows of Ray or of datasets.

    from pipeline.text import make_normalizer, word_errors
    word_errors("Der Kindergarten", "der kinder garten", make_normalizer("leaderboard", "de"),
                compound_pairs=True) == (0, 2)
"""

from pipeline.text.compounds import normalize_compound_pairs, pair_compound_words, pair_compounds
from pipeline.text.normalizers import (
    ENGLISH, IGNORED_REFERENCE, NORMALIZER_NAMES, is_english, is_scorable_reference, make_normalizer,
)
from pipeline.text.wer import error_counts, word_errors

__all__ = ["ENGLISH", "IGNORED_REFERENCE", "NORMALIZER_NAMES", "error_counts", "is_english",
           "is_scorable_reference", "make_normalizer", "normalize_compound_pairs",
           "pair_compound_words", "pair_compounds", "word_errors"]
