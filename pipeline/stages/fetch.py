"""Fetching the compressed audio bytes of index items, a batch at a time, on a worker.

Whole files and byte ranges go through fsspec's concurrent ``cat``/``cat_ranges``; Parquet rows
are read one row group (audio column only) at a time, by :func:`prefetch_parquet` over whole
index blocks (which hold whole row groups), so a row group is read once. A Hugging Face
``audio`` cell whose ``bytes`` are null is read from its ``path`` (absolute, or relative to the
shard's folder). Items that already carry their bytes (``data``) are not read again. Transient
failures (storage down or overloaded) are retried with a bounded backoff and then stop the job with
:class:`~pipeline.retry.StorageUnavailable` (``--resume`` finishes it); only permanent ones (a
missing file) become error rows, so an outage never turns good inputs into error rows.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.retry import is_transient, retry_call
from pipeline.sources.hf_arrow import is_arrow_shard, read_arrow_batch
from pipeline.storage import Storage, join_uri, parent_uri


def _read_error(source: str, exc: BaseException) -> str:
    return f"cannot read {source}: {type(exc).__name__}: {exc}"


def fetch_with_retry(fetch: Callable[[list[int]], list], count: int, *, what: str,
                     storage: Storage) -> list:
    """``fetch(indices)`` → one value or exception per index; indices whose exception is transient
    are fetched again (only those) until the retry budget is spent."""
    values: dict[int, object] = {}
    pending = list(range(count))

    def attempt() -> None:
        nonlocal pending
        got = fetch(pending)
        failed = [(i, v) for i, v in zip(pending, got)
                  if isinstance(v, BaseException) and is_transient(v)]
        values.update((i, v) for i, v in zip(pending, got))
        pending = [i for i, _ in failed]
        if failed:
            raise failed[0][1]

    retry_call(attempt, what=what, budget_s=storage.retry_seconds, redact=storage.redact)
    return [values[i] for i in range(count)]


def _audio_cell(value) -> tuple[bytes | None, str | None]:
    """(bytes, path) of a Parquet audio cell: a ``{bytes, path}`` struct or plain binary."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        return (bytes(data) if data else None), (path or None)
    return (bytes(value) if value else None), None


def _unicode_hint(fs, path: str, exc: BaseException) -> str:
    """For a missing file whose name exists in the other Unicode normal form (macOS writes names
    decomposed, NFD; most tools and manifests compose them, NFC): a sentence saying so."""
    if not isinstance(exc, FileNotFoundError) or path.isascii():
        return ""
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, path)
        if other != path and fs.exists(other):
            return (f"; the name exists in Unicode {form} form (the manifest and the file spell "
                    f"it differently): rename the files to NFC (convmv -f utf8 -t utf8 --nfc) "
                    "or write the manifest in the files' form")
    return ""


def _cat_whole(fs, paths: list[str]) -> list:
    got = fs.cat(paths, on_error="return")
    return [got.get(p, FileNotFoundError(p)) for p in paths]


def _fetch_files(fs, requests: list[tuple[int, str, int, int]], out: list, sources,
                 storage: Storage) -> None:
    """Whole files (offset -1) with ``fs.cat``, ranges with ``fs.cat_ranges``."""
    whole = [(i, p) for i, p, off, _ in requests if off < 0]
    ranged = [(i, p, off, n) for i, p, off, n in requests if off >= 0]
    if whole:
        got = fetch_with_retry(lambda idx: _cat_whole(fs, [whole[j][1] for j in idx]), len(whole),
                               what=f"reading {sources[whole[0][0]]} and others", storage=storage)
        for (i, path), value in zip(whole, got):
            out[i] = (None, storage.redact(_read_error(sources[i], value)
                                           + _unicode_hint(fs, path, value))) \
                if isinstance(value, BaseException) else (value, None)
    if ranged:
        got = fetch_with_retry(
            lambda idx: fs.cat_ranges([ranged[j][1] for j in idx], [ranged[j][2] for j in idx],
                                      [ranged[j][2] + ranged[j][3] for j in idx], on_error="return"),
            len(ranged), what=f"reading {sources[ranged[0][0]]} and others", storage=storage)
        for (i, _, _, n), value in zip(ranged, got):
            if isinstance(value, BaseException):
                out[i] = (None, storage.redact(_read_error(sources[i], value)))
            elif len(value) != n:
                out[i] = (None, f"cannot read {sources[i]}: truncated ({len(value)} of {n} bytes)")
            else:
                out[i] = (value, None)


def _read_parquet_rows(fs, path: str, rows: list[tuple[int, int, int, str, int]], out: list,
                       sources) -> None:
    """Audio cells of ``rows`` (of a Parquet shard, or of a ``save_to_disk`` Arrow shard: a record
    batch for a row group, read at its message ``offset``) into ``out``: ``(bytes, None)``, or ``("path", p)`` for a cell that
    holds only a path, or ``(None, error)``."""
    with fs.open(path, "rb") as f:
        arrow = is_arrow_shard(path)
        shard = None if arrow else pq.ParquetFile(f)
        by_group: dict[tuple[int, str, int], list[tuple[int, int]]] = defaultdict(list)
        for i, group, in_group, column, offset in rows:
            by_group[(group, column, offset)].append((i, in_group))
        for (group, column, offset), wanted in sorted(by_group.items()):
            if arrow:
                f.seek(0)
                cells = read_arrow_batch(f, group, offset, column)
            else:
                cells = shard.read_row_group(group, columns=[column]).column(0)
            for i, in_group in wanted:
                data, audio_path = _audio_cell(cells[in_group].as_py())
                if data:
                    out[i] = (data, None)
                elif audio_path:
                    out[i] = ("path", audio_path)
                else:
                    out[i] = (None, f"no audio bytes and no audio path in {sources[i]}")


def _fetch_parquet_rows(fs, path: str, rows: list[tuple[int, int, int, str, int]], out: list,
                        sources, storage: Storage) -> None:
    """``rows``: (output index, row group, row in group, audio column, batch offset) of one
    shard."""
    try:
        retry_call(lambda: _read_parquet_rows(fs, path, rows, out, sources),
                   what=f"reading {sources[rows[0][0]]}", budget_s=storage.retry_seconds,
                   redact=storage.redact)
    except (OSError, ValueError) as e:
        for i, *_ in rows:
            out[i] = (None, storage.redact(_read_error(sources[i], e)))


def _file_request(i: int, uri: str, offset: int, length: int, storage: Storage, systems: dict,
                  files: dict) -> None:
    if uri not in systems:
        systems[uri] = storage.filesystem(uri)
    fs, path = systems[uri]
    files[type(fs).__name__].append((fs, (i, path, offset, length)))


def fetch_audio(items: list[dict], storage: Storage) -> list[tuple[bytes | None, str | None]]:
    """(bytes, error) per item; items that already carry an error are not read, items that carry
    their bytes (``data``) are not read again."""
    out: list = [(None, None)] * len(items)
    sources = [item["source"] for item in items]
    files: dict[str, list] = defaultdict(list)   # protocol-level groups share one filesystem
    shards: dict[str, list] = defaultdict(list)
    systems: dict[str, tuple] = {}
    for i, item in enumerate(items):
        if item.get("error"):
            continue
        if item.get("data") is not None:
            out[i] = (item["data"], None)
        elif item.get("audio_column"):
            shards[item["uri"]].append((i, item["row_group"], item["row_in_group"],
                                        item["audio_column"], item["offset"]))
        else:
            _file_request(i, item["uri"], item["offset"], item["length"], storage, systems, files)
    for uri, rows in shards.items():
        fs, path = storage.filesystem(uri)
        _fetch_parquet_rows(fs, path, rows, out, sources, storage)
        for i, *_ in rows:   # HF layout: null bytes, the file at ``path`` (relative: the shard's folder)
            if out[i][0] == "path":
                _file_request(i, join_uri(parent_uri(uri), out[i][1]), -1, -1, storage, systems,
                              files)
    for group in files.values():
        _fetch_files(group[0][0], [request for _, request in group], out, sources, storage)
    return out


def row_group_runs(batch: pa.Table) -> list[tuple[int, int]]:
    """``[start, end)`` row ranges of ``batch`` that each hold one Parquet/Arrow row group (rows
    with the same ``uri`` and ``row_group``, next to each other as the index lists them) or a run
    of rows of other kinds; a row group's audio column is read once per run."""
    if not batch.num_rows:
        return []
    if not pc.any(batch.column("audio_column").is_valid()).as_py():
        return [(0, batch.num_rows)]          # no Parquet rows (a manifest's 10⁶ rows): one run
    uris = batch.column("uri").to_pylist()
    groups = batch.column("row_group").to_pylist()
    kinds = batch.column("audio_column").is_valid().to_pylist()
    runs, start = [], 0
    for i in range(1, batch.num_rows):
        same = kinds[i] == kinds[start] and (not kinds[i] or (uris[i], groups[i]) ==
                                             (uris[start], groups[start]))
        if not same:
            runs.append((start, i))
            start = i
    runs.append((start, batch.num_rows))
    return runs


def _with_audio(part: pa.Table, storage: Storage) -> pa.Table:
    """``part`` (one run of :func:`row_group_runs`) with a ``data`` column (and read failures in
    ``error``)."""
    is_parquet = part.column("audio_column").is_valid()
    if not pc.any(is_parquet).as_py():
        return part.append_column("data", pa.nulls(part.num_rows, pa.binary()))
    items = part.to_pylist()
    errors = part.column("error").to_pylist()
    data = []
    for i, (value, error) in enumerate(fetch_audio(items, storage)):
        data.append(value)
        errors[i] = errors[i] or error
    part = part.set_column(part.schema.get_field_index("error"), "error",
                           pa.array(errors, pa.string()))
    return part.append_column("data", pa.array(data, pa.binary()))


def prefetch_parquet(batch: pa.Table, *, storage: Storage) -> Iterator[pa.Table]:
    """An index block → the same rows with the audio of its Parquet/Arrow rows in a ``data``
    column (read failures in ``error``; other rows: null ``data``), yielded a row group at a time.

    Each row group's audio column is read once for all of its rows in the block, so a block must
    hold whole row groups (the index is never cut before this stage: ``pipeline/run.py``), and
    memory holds one row group's audio at a time plus what Ray has not yet sent on.
    """
    for start, end in row_group_runs(batch):
        yield _with_audio(batch.slice(start, end - start), storage)
