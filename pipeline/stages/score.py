"""The score stage: word errors per row against its reference (``pyarrow.Table`` in and out)."""

from __future__ import annotations

import functools

import pyarrow as pa

from pipeline.scoring import make_normalizer, score_row
from pipeline.sinks.schema import output_schema, rows_to_table


@functools.lru_cache(maxsize=4)
def _normalizer(name: str):
    return make_normalizer(name)


def score_batch(batch: pa.Table, *, normalizer: str, with_audio: bool) -> pa.Table:
    normalize = _normalizer(normalizer)
    rows = [score_row(row, normalize) for row in batch.to_pylist()]
    return rows_to_table(rows, output_schema(with_audio))
