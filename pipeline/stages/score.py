"""The score stage: word errors per row against its reference (``pyarrow.Table`` in and out),
by the rules of :mod:`pipeline.text` for the run's normaliser and language."""

from __future__ import annotations

import pyarrow as pa

from pipeline.scoring import score_row
from pipeline.sinks.schema import output_schema, rows_to_table
from pipeline.text import is_english, make_normalizer


def score_batch(batch: pa.Table, *, normalizer: str, with_audio: bool, language: str = "en") -> pa.Table:
    """``wer_errors``/``wer_words`` filled in for every row; ``language`` picks the leaderboard
    normaliser's language and, when not English, pairs compounds first (the multilingual track)."""
    normalize = make_normalizer(normalizer, None if normalizer != "leaderboard" else language)
    compounds = not is_english(language)
    rows = [score_row(row, normalize, compound_pairs=compounds) for row in batch.to_pylist()]
    return rows_to_table(rows, output_schema(with_audio))
