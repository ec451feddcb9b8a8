"""Manifests (NeMo-style JSONL, CSV, TSV): one file's bytes → index items, as pure functions.

Conventions (README "Input formats"; design.md "Ids and sources"):

* Text is UTF-8; a leading UTF-8 BOM (Excel, Windows) is dropped. Other encodings are one
  :class:`ConfigError` naming the file and the first bad byte.
* ``.jsonl``/``.json``: one JSON object a line (NeMo; blank lines skipped; a ``.json`` file holding
  one JSON array of objects also works). CSV: the ``csv`` module's normal quoting. TSV: no quote
  processing at all (``csv.QUOTE_NONE``), as Common Voice writes it, so a sentence with an
  unbalanced ``"`` stays inside its own row.
* Columns: audio = ``--audio-column`` or the first of ``audio_filepath``, ``audio``, ``path``
  present; text = ``--text-column`` (default ``text``; when ``text`` is absent, Common Voice's
  ``sentence`` is taken); id = ``--id-column`` (default ``id``).
* NeMo segments (``nemo.collections.asr`` manifests): a row with an ``offset`` (seconds) is the span
  ``[offset, offset + duration)`` of its file, or ``[offset, end of file)`` without a duration. A
  ``duration`` without an ``offset`` is metadata (prep scripts write the file's length there; a
  rounded value must not cut the audio): the row is the whole file. A ``channel`` (0-based, as in
  lhotse and NeMo) transcribes that channel only; without it, the mean of the channels.
* Relative audio paths resolve against ``audio_root`` when given (Common Voice: ``clips/``), else
  the manifest's folder; URIs (``s3://…``) are used as they are, absolute paths too (against an
  ``s3://`` base, ``/x/a.wav`` means that key in the base's bucket: ``storage.join_uri``).
* Ids: the id column's value when present and non-empty; else the audio path relative to the
  manifest's folder without extension, or the whole path without extension when it lies outside
  that folder (never the basename); a span row's derived id adds ``@<start>-<end>`` in seconds, a
  channel row's ``#ch<N>``.
* A bad row (no audio path, not JSON, a non-numeric or negative offset, a non-positive duration)
  becomes an error row whose id is the row's id value, else ``<manifest URI>:<line>``. A CSV quote
  never closed costs only its own row: reading resumes on the next line.

Speed: a clean manifest is read column-wise by ``manifest_arrow`` (pyarrow's JSON/CSV readers; about
3-5 µs of CPU a row); any manifest it declines is read row by row here (about 10 µs a row).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.conventions import (ItemColumns, absolute_base, decode_utf8, format_seconds,
                                          channel_suffix, gunzip, keep_extensions_of_shared_ids,
                                          path_id, resolve_audio, row_channel, span_suffix,
                                          windows_drive_error)
from pipeline.sources.formats import manifest_extension
from pipeline.sources.manifest_arrow import CHANNEL_COLUMN, arrow_manifest_table
from pipeline.storage import parent_uri

# ``file_name``: Hugging Face ``audiofolder`` metadata (``metadata.csv``/``metadata.jsonl``).
MANIFEST_AUDIO_COLUMNS = ("audio_filepath", "audio", "path", "file_name")
DEFAULT_TEXT_COLUMN = "text"
# Taken when the default text column is absent: Common Voice's TSVs call it ``sentence``;
# audiofolder metadata often ``transcription``.
TEXT_COLUMN_FALLBACKS = ("sentence", "transcription", "transcript")

TSV_OPTIONS = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}   # Common Voice: no quote processing
BOM = b"\xef\xbb\xbf"
Row = tuple[int, dict | None, str | None]   # (line number, row, why the row could not be read)


# --- parsing -------------------------------------------------------------------------------------

def _json_rows(text: str) -> Iterator[Row]:
    """JSON lines (or one JSON array of objects) → rows; a bad line is a row with its reason."""
    if text.lstrip().startswith("["):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, list):
            for number, row in enumerate(whole, 1):
                yield number, row if isinstance(row, dict) else None, \
                    None if isinstance(row, dict) else "not a JSON object"
            return
    yield from json_lines(text)


def json_lines(text: str) -> Iterator[Row]:
    """JSON lines → (line number, row, why not) per non-blank line; a line that is not a JSON
    object is a row with its reason (NeMo manifests, lhotse manifests)."""
    # split("\n"), not splitlines(): U+2028 and friends may stand raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield number, None, f"not JSON ({e.msg} at column {e.colno})"
            continue
        yield (number, row, None) if isinstance(row, dict) else (number, None, "not a JSON object")


def _records(text: str, options: dict) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line, fields or ``None``, why not) of each record, blank lines included as ``[]``.

    Strict parsing: a record the ``csv`` module rejects (a quote never closed, text after a closing
    quote) is reported on its first line and reading resumes on the next line, so one stray ``"``
    cannot swallow the rest of the file into one field.
    """
    f = io.StringIO(text, newline="")
    line = 1                                   # first line of the next record
    while True:
        reader = csv.reader(f, strict=True, **options)
        start, counted = f.tell(), 0
        try:
            for record in reader:
                yield line, record, None
                line, counted = line + reader.line_num - counted, reader.line_num
                start = f.tell()
            return
        except csv.Error as e:
            yield line, None, f"not valid CSV ({e})"
        f.seek(start)
        if not f.readline():
            return
        line += 1


def _delimited_rows(text: str, tsv: bool, uri: str) -> tuple[list[str], Iterator[Row]]:
    """(header, rows) of a CSV (normal quoting) or TSV (no quote processing) text."""
    records = _records(text, TSV_OPTIONS if tsv else {})
    _, header, problem = next(records, (1, [], None))
    if header is None:
        raise ConfigError(f"manifest {uri}: the header line is {problem}")
    header = [name.strip() for name in header]

    def rows() -> Iterator[Row]:
        for line, record, problem in records:
            if record is None:
                yield line, None, problem
            elif not any(field.strip() for field in record):
                continue
            elif len(record) > len(header) and any(f.strip() for f in record[len(header):]):
                yield line, None, (f"{len(record)} fields but the header has {len(header)} "
                                   "(an unquoted delimiter?)")
            else:
                yield line, dict(zip(header, record)), None
    return header, rows()


def _kind(uri: str) -> str:
    """``jsonl``/``json``/``csv``/``tsv`` from ``uri``'s extension (through a ``.gz``); else
    ``ConfigError``."""
    ext = manifest_extension(uri)
    if ext not in ("jsonl", "json", "csv", "tsv"):
        raise ConfigError(f"manifest {uri}: unknown kind {ext!r}; use .jsonl, .json, .csv or .tsv "
                          "(gzip-compressed: the same with .gz)")
    return ext


def parse_manifest(text: str, uri: str) -> tuple[list[str] | None, list[Row]]:
    """(header or ``None`` for JSON, rows) of a manifest's text; the kind comes from ``uri``'s
    extension (``jsonl``/``json``, ``csv``, ``tsv``)."""
    kind = _kind(uri)
    if kind in ("jsonl", "json"):
        return None, list(_json_rows(text))
    header, rows = _delimited_rows(text, kind == "tsv", uri)
    return header, list(rows)


# --- rows → items --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """Which columns of this manifest hold what, and where relative paths and ids start from."""

    uri: str
    audio: str
    text: str | None
    id: str
    offset: str
    duration: str
    audio_prefix: str    # base folder for relative audio paths, with a trailing '/'
    id_folder: str


def _choose_columns(names: set[str], columns: SourceColumns, uri: str) -> tuple[str, str | None]:
    """(audio column, text column or ``None``) of a manifest with these column names."""
    if columns.audio is not None:
        if columns.audio not in names:
            raise ConfigError(f"manifest {uri} has no column {columns.audio!r} "
                              f"(columns: {', '.join(sorted(names))}); fix --audio-column")
        audio = columns.audio
    else:
        audio = next((name for name in MANIFEST_AUDIO_COLUMNS if name in names), None)
        if audio is None:
            raise ConfigError(f"manifest {uri} has none of the audio columns "
                              f"{', '.join(MANIFEST_AUDIO_COLUMNS)}; pass --audio-column")
    if columns.text in names:
        return audio, columns.text
    if columns.text != DEFAULT_TEXT_COLUMN:
        raise ConfigError(f"manifest {uri} has no column {columns.text!r} "
                          f"(columns: {', '.join(sorted(names))}); fix --text-column")
    return audio, next((name for name in TEXT_COLUMN_FALLBACKS if name in names), None)


def _value(row: dict, column: str) -> str | None:
    """A cell as stripped text; ``None`` when missing, null or empty."""
    value = row.get(column)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _seconds(row: dict, column: str) -> float | None:
    """A cell in seconds, ``None`` when absent. Raises ``ValueError`` (one line) when not a number."""
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{column} {value!r} is not a number")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a number") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{column} {value!r} is not a finite number")
    return seconds


def _span(row: dict, plan: _Plan) -> tuple[float | None, float | None]:
    """(start_s, end_s) of a row: both ``None`` for the whole file. Raises ``ValueError``."""
    start = _seconds(row, plan.offset)
    if start is None:
        return None, None          # a duration alone is metadata: the whole file
    if start < 0:
        raise ValueError(f"{plan.offset} {format_seconds(start)} is negative")
    duration = _seconds(row, plan.duration)
    if duration is None:
        return start, None
    if duration <= 0:
        raise ValueError(f"{plan.duration} {format_seconds(duration)} is not positive")
    return start, start + duration


def row_start(out: ItemColumns, plan: _Plan, line: int, number: int, row: dict | None,
              problem: str | None) -> tuple[str | None, str | None, str] | None:
    """(the row's own id or ``None``, its reference or ``None``, the id of an error row: the
    manifest's URI and line) of data row ``number``; ``None`` when the row could not be read at
    all, its error row then added to ``out``."""
    fallback_id = f"{plan.uri}:{line}"
    if row is None:
        out.add(fallback_id, plan.uri, error=f"manifest row {number}: {problem}")
        return None
    reference = row.get(plan.text) if plan.text else None
    reference = None if reference is None or reference == "" else str(reference)
    return _value(row, plan.id), reference, fallback_id


def _add_row(out: ItemColumns, plan: _Plan, line: int, number: int, row: dict | None,
             problem: str | None) -> None:
    """Append the item of data row ``number`` (file line ``line``) to ``out``."""
    started = row_start(out, plan, line, number, row, problem)
    if started is None:
        return
    uid, reference, fallback_id = started
    audio = row.get(plan.audio)
    if audio is not None and not isinstance(audio, str):
        out.add(uid or fallback_id, plan.uri, reference,
                f"manifest row {number}: {plan.audio!r} is not a path ({type(audio).__name__})")
        return
    audio = (audio or "").strip()
    if not audio:
        out.add(uid or fallback_id, plan.uri, reference,
                f"manifest row {number} has no {plan.audio!r}")
        return
    drive = windows_drive_error(audio)
    if drive:
        out.add(uid or fallback_id, audio, reference, f"manifest row {number}: {drive}")
        return
    uri = resolve_audio(plan.audio_prefix, audio)
    try:
        start, end = _span(row, plan)
        channel = row_channel(row.get(CHANNEL_COLUMN))
    except ValueError as e:
        out.add(uid or fallback_id, uri, reference, f"manifest row {number}: {e}")
        return
    if uid is None:
        uid = path_id(plan.id_folder, uri) + ("" if start is None else span_suffix(start, end)) \
            + ("" if channel is None else channel_suffix(channel))
    out.add(uid, uri, reference, None, start, end, channel=channel)


def _plan(names: set[str], manifest_uri: str, columns: SourceColumns,
          audio_root: str | None, id_folder: str | None = None) -> _Plan:
    audio, text = _choose_columns(names, columns, manifest_uri)
    folder = parent_uri(manifest_uri)
    return _Plan(uri=manifest_uri, audio=audio, text=text, id=columns.id, offset=columns.offset,
                 duration=columns.duration, id_folder=id_folder or folder,
                 audio_prefix=(absolute_base(audio_root) if audio_root else folder).rstrip("/") + "/")


def _items(header: list[str] | None, rows: list[Row], manifest_uri: str, columns: SourceColumns,
           audio_root: str | None, id_folder: str | None = None) -> ItemColumns:
    out = ItemColumns()
    if not rows:
        return out
    if header is None:
        names: set[str] = set()
        for _, row, _ in rows:
            if row is not None:
                names.update(row)
    else:
        names = set(header)
    plan = _plan(names, manifest_uri, columns, audio_root, id_folder)
    for number, (line, row, problem) in enumerate(rows, 1):
        _add_row(out, plan, line, number, row, problem)
    return out


def manifest_table(data: bytes, manifest_uri: str, columns: SourceColumns,
                   audio_root: str | None = None, id_folder: str | None = None) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one manifest file's raw bytes: one per row, in file order.

    Pure (runs inside a Ray task). See the module docstring for the conventions. ``start_s`` /
    ``end_s`` are seconds (``end_s`` null with ``start_s`` set: to the end of the file). Gzip
    data (``.jsonl.gz``, or any manifest starting with the gzip magic) is decompressed first.
    ``id_folder``: where derived ids start (default: the manifest's folder; a folder input's
    root, so that the manifests of two splits never share an id).

    Raises:
        ConfigError: the file is not UTF-8 (or not valid gzip), has an unknown extension, or lacks
            the audio column (or a ``--text-column`` other than the default ``text``).
    """
    data = gunzip(data, manifest_uri)
    text = decode_utf8(data, manifest_uri)
    kind = _kind(manifest_uri)
    folder = id_folder or parent_uri(manifest_uri)
    header = None
    if kind in ("csv", "tsv") and not (kind == "csv" and '"' in text):   # quotes: csv module's call
        _, header, _ = next(_records(text, TSV_OPTIONS if kind == "tsv" else {}), (1, None, None))
    if kind in ("jsonl", "json") or (header and len({h.strip() for h in header} - {""}) == len(header)):
        body = data[len(BOM):] if data.startswith(BOM) else data
        fast = arrow_manifest_table(body, kind, header, lambda names: _plan(
            names, manifest_uri, columns, audio_root, folder))
        if fast is not None:
            return keep_extensions_of_shared_ids(fast, folder)
    return rowwise_manifest_table(text, manifest_uri, columns, audio_root, folder)


def rowwise_manifest_table(text: str, manifest_uri: str, columns: SourceColumns,
                           audio_root: str | None = None, id_folder: str | None = None) -> pa.Table:
    """:func:`manifest_table` row by row on decoded text: the reader that writes error rows."""
    folder = id_folder or parent_uri(manifest_uri)
    header, rows = parse_manifest(text, manifest_uri)
    return keep_extensions_of_shared_ids(
        _items(header, rows, manifest_uri, columns, audio_root, folder).table(), folder)


# --- thin wrappers kept for the driver-side listing ----------------------------------------------

def read_manifest_rows(text: str, ext: str) -> list[dict]:
    """Rows of a JSONL or CSV/TSV manifest's text (BOM dropped, TSV without quote processing).

    Raises:
        ConfigError: a JSONL line is not a JSON object.
    """
    header, rows = parse_manifest(text.removeprefix("\ufeff"), f"manifest.{ext}")
    for line, row, problem in rows:
        if row is None:
            raise ConfigError(f"manifest line {line} is {problem}")
    return [row for _, row, _ in rows]


def manifest_items(rows: list[dict], manifest_uri: str, columns: SourceColumns,
                   audio_root: str | None = None) -> list[dict]:
    """Index items (dicts of ``ITEM_SCHEMA``) of rows read by :func:`read_manifest_rows`."""
    names = set().union(*rows) if rows else set()
    listed = [(number, row, None) for number, row in enumerate(rows, 1)]
    table = _items(sorted(names), listed, manifest_uri, columns, audio_root).table()
    return table.to_pylist()
