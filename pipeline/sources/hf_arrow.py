"""Hugging Face ``save_to_disk`` folders: Arrow IPC shards (``data-00000-of-00001.arrow``) beside
``state.json`` and ``dataset_info.json``; a ``DatasetDict`` folder holds one such folder per split
(``dataset_dict.json``, ``train/``, ``test/``).

``datasets`` writes the shards in the Arrow IPC *stream* format (``pyarrow.ipc.new_stream``), one
record batch per ``writer_batch_size`` rows; the ``audio`` column is the same ``{bytes, path}``
struct as in Parquet shards. A record batch plays the part of a Parquet row group: the index keeps
each row's batch number, its row within the batch and the byte offset of the batch's message, so
that fetching reads the schema message and that one batch (a seek, no scan). The IPC *file* format
(``ARROW1`` magic) is read by batch number.

Ids: the ``id`` column, else ``<shard stem>/<row>`` as for Parquet shards, with the shard's folder
under the input in front when two shards share a stem (``ids.shard_prefixes``): the splits of a
``DatasetDict`` give ``train/data-00000-of-00001/17`` and ``test/data-00000-of-00001/17``.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.items import file_item, items_table
from pipeline.sources.shards import DEFAULT_PARQUET_AUDIO_COLUMN, PARQUET_BLOCK_ROWS, parquet_group_table

FILE_MAGIC = b"ARROW1"
STATE_FILE = "state.json"


def _batches(f) -> Iterator[tuple[int, int, pa.RecordBatch, pa.Schema]]:
    """(batch number, message offset or -1, batch, schema) of an IPC stream or file."""
    source = f if isinstance(f, pa.NativeFile) else pa.PythonFile(f, mode="r")
    head = source.read(len(FILE_MAGIC))
    source.seek(0)
    if head == FILE_MAGIC:
        reader = pa.ipc.open_file(source)
        for number in range(reader.num_record_batches):
            yield number, -1, reader.get_batch(number), reader.schema
        return
    messages = pa.ipc.MessageReader.open_stream(source)
    schema = pa.ipc.read_schema(messages.read_next_message())
    number = 0
    while True:
        offset = source.tell()
        try:
            message = messages.read_next_message()
        except StopIteration:
            return
        if message.type != "record batch":
            raise ConfigError("Arrow stream with dictionary batches is not read; save the dataset "
                              "again (datasets' save_to_disk writes none)")
        yield number, offset, pa.ipc.read_record_batch(message, schema), schema
        number += 1


def arrow_index(uri: str, f, columns: SourceColumns, stem: str | None = None
                ) -> Iterator[pa.Table]:
    """Index blocks of one Arrow shard opened as ``f`` (local shards are memory-mapped by the
    caller, so the audio bodies are not read), whole record batches at a time.

    ``stem``: what derived ids start with (``ids.shard_prefixes``, the rule Parquet shards
    follow; default: the shard's stem).

    Raises :class:`ConfigError` when the audio column is missing; a shard that cannot be read
    yields one error row (``<uri>#error``) after the rows read so far.
    """
    audio_col = columns.audio or DEFAULT_PARQUET_AUDIO_COLUMN
    pending: list[pa.Table] = []
    row = 0
    try:
        for number, offset, batch, schema in _batches(f):
            if audio_col not in schema.names:
                raise ConfigError(f"Arrow shard {uri} has no audio column {audio_col!r} "
                                  f"(columns: {', '.join(schema.names)}); fix --audio-column")
            wanted = [c for c in dict.fromkeys((columns.id, columns.text)) if c in schema.names]
            part = pa.Table.from_batches([batch]).select(wanted) if wanted else None
            table = parquet_group_table(uri, part, row, batch.num_rows, number, columns, audio_col,
                                        stem=stem)
            pending.append(table.set_column(table.schema.get_field_index("offset"), "offset",
                                            pa.repeat(pa.scalar(offset, pa.int64()), batch.num_rows)))
            row += batch.num_rows
            if sum(t.num_rows for t in pending) >= PARQUET_BLOCK_ROWS:
                yield pa.concat_tables(pending)
                pending = []
    except (OSError, pa.ArrowException) as e:
        pending.append(items_table([file_item(f"{uri}#error", uri, error=(
            f"unreadable Arrow shard after {row} rows: {type(e).__name__}: {e}"))]))
    if pending:
        yield pa.concat_tables(pending)


def read_arrow_batch(f, number: int, offset: int, column: str) -> pa.Array:
    """Column ``column`` of record batch ``number`` (at byte ``offset`` of a stream; ``-1`` in
    the IPC file format) of an Arrow shard opened as ``f``."""
    source = f if isinstance(f, pa.NativeFile) else pa.PythonFile(f, mode="r")
    if offset < 0:
        batch = pa.ipc.open_file(source).get_batch(number)
    else:
        schema = pa.ipc.read_schema(pa.ipc.read_message(source))
        source.seek(offset)
        batch = pa.ipc.read_record_batch(pa.ipc.read_message(source), schema)
    return batch.column(column)


def is_arrow_shard(uri: str) -> bool:
    return uri.lower().endswith(".arrow")

