"""The index of utterances built once on the driver: where each one's audio bytes live.

An item is a small dict (no audio): ``id``, ``source`` (URI shown to users), ``reference``,
``error`` and a locator saying how to fetch the compressed bytes later, on a worker:

* a whole file: ``uri`` with ``offset = -1``;
* a byte range of a file (a WebDataset member): ``uri``, ``offset``, ``length``;
* a Parquet row: ``uri`` of the shard, ``row_group``, ``row_in_group``, ``audio_column``.

``start_s``/``end_s`` (seconds, null for the whole file) make the item a span of its audio.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.sources.ids import DUPLICATE_ID, first_occurrences

ITEM_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("reference", pa.string()),
    ("error", pa.string()),
    ("uri", pa.string()),
    ("offset", pa.int64()),
    ("length", pa.int64()),
    ("row_group", pa.int32()),
    ("row_in_group", pa.int32()),
    ("audio_column", pa.string()),
    # A span of the file (NeMo offset/duration, Kaldi segments): decode only [start_s, end_s).
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
])


def file_item(uid: str, uri: str, reference: str | None = None, error: str | None = None) -> dict:
    return {"id": uid, "source": uri, "reference": reference, "error": error, "uri": uri,
            "offset": -1, "length": -1, "row_group": -1, "row_in_group": -1, "audio_column": None,
            "start_s": None, "end_s": None}


def range_item(uid: str, source: str, uri: str, offset: int, length: int,
               reference: str | None = None) -> dict:
    item = file_item(uid, uri, reference)
    item.update(source=source, offset=offset, length=length)
    return item


def parquet_item(uid: str, source: str, uri: str, row_group: int, row_in_group: int,
                 audio_column: str, reference: str | None = None) -> dict:
    item = file_item(uid, uri, reference)
    item.update(source=source, row_group=row_group, row_in_group=row_in_group,
                audio_column=audio_column)
    return item


def mark_duplicates(items: list[dict]) -> list[dict]:
    """Items with an id seen before become error rows (``duplicate id``); the first one wins."""
    firsts = first_occurrences([item["id"] for item in items])
    return [item if first else {**item, "error": DUPLICATE_ID}
            for item, first in zip(items, firsts)]


def items_table(items: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(items, schema=ITEM_SCHEMA)
