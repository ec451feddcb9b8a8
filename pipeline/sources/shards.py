"""Indexing sharded inputs: Parquet (Hugging Face datasets layout) and WebDataset tars.

Only metadata is read here: a Parquet shard's footer plus its id and text columns; a tar's member
headers plus its small ``.txt``/``.json`` members. Audio bytes are fetched later, on workers, by
row group or byte range.
"""

from __future__ import annotations

import json
import tarfile
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.formats import AUDIO_EXTENSIONS
from pipeline.sources.ids import parquet_row_id, webdataset_split
from pipeline.sources.items import file_item, parquet_item, range_item
from pipeline.storage import Storage

DEFAULT_PARQUET_AUDIO_COLUMN = "audio"
INDEX_THREADS = 8


def _column_or_none(table, name: str) -> list | None:
    return table.column(name).to_pylist() if name in table.column_names else None


def _as_text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def index_parquet_shard(uri: str, storage: Storage, columns: SourceColumns) -> list[dict]:
    fs, path = storage.filesystem(uri)
    audio_col = columns.audio or DEFAULT_PARQUET_AUDIO_COLUMN
    try:
        with fs.open(path, "rb") as f:
            shard = pq.ParquetFile(f)
            names = shard.schema_arrow.names
            if audio_col not in names:
                raise ConfigError(f"Parquet shard {uri} has no audio column {audio_col!r} "
                                  f"(columns: {', '.join(names)}); fix --audio-column")
            wanted = [c for c in (columns.id, columns.text) if c in names]
            table = shard.read(columns=wanted) if wanted else None
            group_sizes = [shard.metadata.row_group(g).num_rows for g in range(shard.num_row_groups)]
    except (OSError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        return [file_item(f"{uri}#error", uri, error=f"unreadable Parquet shard: {e}")]
    ids = _column_or_none(table, columns.id) if table is not None else None
    texts = _column_or_none(table, columns.text) if table is not None else None
    items, row = [], 0
    for group, size in enumerate(group_sizes):
        for in_group in range(size):
            uid = _as_text(ids[row]) if ids is not None else None
            items.append(parquet_item(
                uid or parquet_row_id(path, row), f"{uri}#{row}", uri, group, in_group, audio_col,
                reference=_as_text(texts[row]) if texts is not None else None))
            row += 1
    return items


def index_parquet_shards(files, storage: Storage, columns: SourceColumns) -> list[dict]:
    with ThreadPoolExecutor(INDEX_THREADS) as pool:
        per_shard = list(pool.map(lambda uri: index_parquet_shard(uri, storage, columns), files))
    return [item for shard in per_shard for item in shard]


def reference_from_member(ext: str, data: bytes, columns: SourceColumns) -> str | None:
    """Reference text from a ``.txt`` member or the text field of a ``.json`` member."""
    text = data.decode("utf-8", errors="replace")
    if ext == "txt":
        return _as_text(text.strip())
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return _as_text(record.get(columns.text)) if isinstance(record, dict) else None


def id_from_member(data: bytes, columns: SourceColumns) -> str | None:
    """The id field (``--id-column``) of a ``.json`` member, if it has one."""
    try:
        record = json.loads(data.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return _as_text(record.get(columns.id)) if isinstance(record, dict) else None


def index_tar_shard(uri: str, storage: Storage, columns: SourceColumns) -> list[dict]:
    """One item per key with an audio member, in the order the audio members appear."""
    fs, path = storage.filesystem(uri)
    audio: dict[str, tuple[int, int]] = {}
    texts: dict[str, str | None] = {}
    ids: dict[str, str] = {}   # a .json member's id field wins over the key (keys cannot hold dots)
    try:
        with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = webdataset_split(member.name)
                last_ext = ext.rsplit(".", 1)[-1]
                if last_ext in AUDIO_EXTENSIONS and key not in audio:
                    audio[key] = (member.offset_data, member.size)
                elif ext in ("txt", "json"):
                    data = tar.extractfile(member).read()
                    if texts.get(key) is None:
                        texts[key] = reference_from_member(ext, data, columns)
                    if ext == "json" and (uid := id_from_member(data, columns)) is not None:
                        ids[key] = uid
    except (OSError, tarfile.TarError) as e:
        return [file_item(f"{uri}#error", uri, error=f"unreadable tar shard: {e}")]
    return [range_item(ids.get(key, key), f"{uri}#{key}", uri, offset, size, reference=texts.get(key))
            for key, (offset, size) in audio.items()]


def index_tar_shards(files, storage: Storage, columns: SourceColumns) -> list[dict]:
    with ThreadPoolExecutor(INDEX_THREADS) as pool:
        per_shard = list(pool.map(lambda uri: index_tar_shard(uri, storage, columns), files))
    return [item for shard in per_shard for item in shard]
