"""Manifests (NeMo-style JSONL, CSV, TSV): rows → index items, as pure functions."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.ids import relative_id
from pipeline.sources.items import file_item, items_table
from pipeline.storage import join_uri, parent_uri

MANIFEST_AUDIO_COLUMNS = ("audio_filepath", "audio", "path")


def read_manifest_rows(text: str, ext: str) -> list[dict]:
    """Rows of a JSONL (one object a line) or CSV/TSV manifest."""
    if ext in ("jsonl", "json"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ConfigError(f"manifest line {number} is not JSON: {e}") from e
        return rows
    return list(csv.DictReader(io.StringIO(text), delimiter="\t" if ext == "tsv" else ","))


def pick_audio_column(row: dict, columns: SourceColumns, manifest: str) -> str:
    if columns.audio is not None:
        if columns.audio not in row:
            raise ConfigError(f"manifest {manifest} has no column {columns.audio!r} "
                              f"(columns: {', '.join(row)}); fix --audio-column")
        return columns.audio
    for name in MANIFEST_AUDIO_COLUMNS:
        if name in row:
            return name
    raise ConfigError(f"manifest {manifest} has none of the audio columns "
                      f"{', '.join(MANIFEST_AUDIO_COLUMNS)}; pass --audio-column")


def _text_or_none(value) -> str | None:
    return None if value is None or value == "" else str(value)


def manifest_items(rows: list[dict], manifest_uri: str, columns: SourceColumns) -> list[dict]:
    """Index items of one manifest; relative audio paths resolve against the manifest's folder."""
    if not rows:
        return []
    audio_col = pick_audio_column(rows[0], columns, manifest_uri)
    folder = parent_uri(manifest_uri)
    folder_path = folder.split("://", 1)[-1]
    items = []
    for number, row in enumerate(rows, 1):
        rel = row.get(audio_col)
        uid = _text_or_none(row.get(columns.id))
        if not rel:
            items.append(file_item(uid or f"{manifest_uri}:{number}", manifest_uri,
                                   error=f"manifest row {number} has no {audio_col!r}"))
            continue
        uri = join_uri(folder, str(rel))
        if uid is None:
            uid = relative_id(folder_path, uri.split("://", 1)[-1])
        items.append(file_item(uid, uri, reference=_text_or_none(row.get(columns.text))))
    return items


def manifest_table(data: bytes, manifest_uri: str, columns: SourceColumns,
                   audio_root: str | None = None) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one manifest file's raw bytes, one per row, in file order.

    Runs inside a Ray task. Relative audio paths resolve against ``audio_root`` when given, else
    the manifest's folder.
    """
    ext = manifest_uri.rsplit(".", 1)[-1].lower()
    rows = read_manifest_rows(data.decode("utf-8"), ext)
    return items_table(manifest_items(rows, manifest_uri, columns))
