"""The score stage: word errors per row against its reference (``pyarrow.Table`` in and out)."""

from __future__ import annotations

import functools

import pyarrow as pa

from pipeline.scoring import make_normalizer, score_row
from pipeline.stages.passthrough import carry_columns
from pipeline.sinks.schema import output_schema, rows_to_table


@functools.lru_cache(maxsize=4)
def _normalizer(name: str):
    return make_normalizer(name)


def score_batch(batch: pa.Table, *, normalizer: str, with_audio: bool,
                passthrough: tuple[str, ...] = ()) -> pa.Table:
    """Rows of ``output_schema`` with ``wer_errors``/``wer_words`` filled in, plus the
    ``passthrough`` columns of ``batch`` unchanged."""
    normalize = _normalizer(normalizer)
    rows = [score_row(row, normalize) for row in batch.drop_columns(
        [n for n in passthrough if n in batch.column_names]).to_pylist()]
    return carry_columns(rows_to_table(rows, output_schema(with_audio)), batch, passthrough)
