"""Columns of a user's rows carried unchanged through the stages (the Ray Data API,
``pipeline/data.py``): every stage returns one row per input row, in input order, so a stage
appends its input's ``passthrough`` columns to what it built."""

from __future__ import annotations

import pyarrow as pa


def carry_columns(out: pa.Table, batch: pa.Table, names: tuple[str, ...]) -> pa.Table:
    """``out`` with ``batch``'s columns ``names`` appended (rows correspond one to one); a name
    ``out`` already has is left as ``out`` made it."""
    for name in names:
        if name in batch.column_names and name not in out.column_names:
            out = out.append_column(batch.schema.field(name), batch.column(name))
    return out
