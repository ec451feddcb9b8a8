"""The index of utterances, built inside Ray tasks: where each one's audio bytes live.

An item is a small dict (no audio): ``id``, ``source`` (URI shown to users), ``reference``,
``error`` and a locator saying how to fetch the compressed bytes later, on a worker:

* a whole file: ``uri`` with ``offset = -1``;
* a byte range of a file (a WebDataset member): ``uri``, ``offset``, ``length``;
* a Parquet row: ``uri`` of the shard, ``row_group``, ``row_in_group``, ``audio_column``;
* bytes already read (``data``, added for Parquet rows before decoding, a row group at a time).

``start_s``/``end_s`` (seconds, null for the whole file) make the item a span of its audio;
``channel`` (null: the downmix) picks one channel of it.
"""

from __future__ import annotations

import pyarrow as pa


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
    # The channel of the file to transcribe (0-based; lhotse/NeMo ``channel``, ``--channel N``);
    # null: the mean of all channels.
    ("channel", pa.int32()),
])
# Added by the index tasks: the row's place in the input order (task number << 32 | row in the
# task's output), unique and stable, so that "the first one wins" needs no global sort; and
# whether the reference passes the evaluation filter (always true without one).
ORDER_COLUMN = "_order"
SCORABLE_COLUMN = "_scorable"
INDEX_SCHEMA = ITEM_SCHEMA.append(pa.field(ORDER_COLUMN, pa.int64())).append(
    pa.field(SCORABLE_COLUMN, pa.bool_()))


def file_item(uid: str, uri: str, reference: str | None = None, error: str | None = None) -> dict:
    return {"id": uid, "source": uri, "reference": reference, "error": error, "uri": uri,
            "offset": -1, "length": -1, "row_group": -1, "row_in_group": -1, "audio_column": None,
            "start_s": None, "end_s": None, "channel": None}


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


def items_table(items: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(items, schema=ITEM_SCHEMA)


# ``channel`` of an item that becomes one row per channel of its file (``--channel all``).
ALL_CHANNELS = -1

GHOSTS_KEY = b"ghosts"


def with_ghosts(table: pa.Table, ghosts: int) -> pa.Table:
    """``table`` remembering (schema metadata) how many macOS metadata members were skipped."""
    return table.replace_schema_metadata({GHOSTS_KEY: str(ghosts)}) if ghosts else table


def ghosts_of(table: pa.Table) -> int:
    meta = table.schema.metadata or {}
    return int(meta.get(GHOSTS_KEY, b"0"))


GROUPS_KEY = b"row_group_bytes"


def with_group_sizes(table: pa.Table, sizes: list[tuple[int, int]]) -> pa.Table:
    """``table`` remembering (schema metadata) the audio bytes of each Parquet row group it
    indexes: ``(row group, uncompressed bytes of the audio column chunk)``."""
    import json

    meta = dict(table.schema.metadata or {})
    meta[GROUPS_KEY] = json.dumps(sizes)
    return table.replace_schema_metadata(meta)


def group_sizes_of(table: pa.Table) -> list[tuple[int, int]]:
    """The ``(row group, audio bytes)`` pairs :func:`with_group_sizes` left on ``table``'s schema
    metadata; ``[]`` for a table that indexes no Parquet row group."""
    import json

    meta = table.schema.metadata or {}
    return [tuple(pair) for pair in json.loads(meta.get(GROUPS_KEY, b"[]"))]
