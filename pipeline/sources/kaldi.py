"""Kaldi data directories: ``wav.scp`` (+ ``text``, optional ``segments``), as a pure reader.

Conventions (Kaldi's "Data preparation" page; lhotse's ``kaldi.py`` reads them the same way):

* ``wav.scp``: ``RECID PATH`` lines. ``RECID CMD ... |`` (a piped command, e.g. ``sph2pipe``) and
  ``PATH.ark:OFFSET`` (an archive offset) are not run or parsed: they become error rows naming the
  recording. Relative paths are relative to the directory the recipe runs in, which for Kaldi's
  ``<recipe>/data/<set>`` layout is the data dir's grandparent; ``--audio-root`` overrides that.
* ``text``: ``UTTID WORDS...``; ``segments``: ``UTTID RECID START END`` in seconds, ``END`` ``-1``
  meaning the end of the recording.
* Without ``segments`` each recording is one utterance (id = RECID, reference = its ``text`` line).
  With ``segments`` the segments are the utterances (id = UTTID, the span ``[START, END)`` of the
  recording); a recording no segment names is not an utterance (as in Kaldi) and has no row.
* Kaldi ids are ids (they come from the data dir): no path-derived ids, no span suffix.
* A ``text`` line whose utterance has no audio becomes an error row, so nothing disappears.
"""

from __future__ import annotations

import re

import pyarrow as pa

from pipeline.config import ConfigError
from pipeline.sources.conventions import ItemColumns, absolute_base, decode_utf8, format_seconds
from pipeline.storage import join_uri, parent_uri

_ARK_OFFSET = re.compile(r"\.ark:\d+$")


def _table_lines(data: bytes, uri: str) -> list[list[str]]:
    """Non-blank lines of a Kaldi table file split into ``[key, rest]`` (``rest`` may be absent)."""
    text = decode_utf8(data, uri, "Kaldi file")
    return [line.strip().split(maxsplit=1) for line in text.split("\n") if line.strip()]


def _recording(rest: str | None, recid: str, base: str) -> tuple[str | None, str | None]:
    """(audio URI, error) of one ``wav.scp`` entry."""
    if not rest:
        return None, f"wav.scp entry of recording {recid} has no path"
    if rest.endswith("|"):
        return None, (f"piped command in wav.scp (recording {recid}) is not supported; "
                      "convert the audio to files and list their paths")
    if _ARK_OFFSET.search(rest) or rest == "-":
        return None, (f"wav.scp entry {rest!r} (recording {recid}) is not a file path; "
                      "only plain paths are supported")
    return join_uri(base, rest), None


def _segment(parts: list[str]) -> tuple[str, float, float | None]:
    """(RECID, start_s, end_s or ``None`` for the end) of ``[UTTID, "RECID START END"]``.
    Raises ``ValueError`` with a one-line reason."""
    fields = parts[1].split() if len(parts) > 1 else []
    if len(fields) != 3:
        raise ValueError(f"segments line of {parts[0]} needs 'UTTID RECID START END'")
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        raise ValueError(f"segments line of {parts[0]}: start/end {fields[1]!r} {fields[2]!r} "
                         "are not numbers") from None
    if start < 0 or (end != -1 and end <= start):
        raise ValueError(f"segments line of {parts[0]}: span {format_seconds(start)}-"
                         f"{format_seconds(end)} is empty or negative")
    return fields[0], start, None if end == -1 else end


def kaldi_table(data_dir: str, files: dict[str, bytes], audio_root: str | None = None) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one Kaldi data dir. Pure (runs inside a Ray task).

    Args:
        data_dir: the data dir (path or URI), used for messages and to resolve relative paths.
        files: ``wav.scp`` (required), ``text`` and ``segments`` (when present) → their bytes.
        audio_root: base for relative ``wav.scp`` paths; ``None``: the data dir's grandparent.

    Returns one row per utterance in ``segments`` order (or ``wav.scp`` order without segments),
    then an error row per ``text`` utterance without audio. ``start_s``/``end_s`` are seconds
    (``end_s`` null with ``start_s`` set: to the end of the recording).

    Raises:
        ConfigError: no ``wav.scp``, or a file that is not UTF-8.
    """
    data_dir = data_dir.rstrip("/")
    if "wav.scp" not in files:
        raise ConfigError(f"Kaldi data dir {data_dir} has no wav.scp")
    base = absolute_base(audio_root) if audio_root else parent_uri(parent_uri(data_dir))
    entries = [(parts[0], _recording(parts[1] if len(parts) > 1 else None, parts[0], base))
               for parts in _table_lines(files["wav.scp"], f"{data_dir}/wav.scp")]
    recordings = {}
    for recid, entry in entries:
        recordings.setdefault(recid, entry)
    texts = {}
    for parts in _table_lines(files.get("text", b""), f"{data_dir}/text"):
        texts.setdefault(parts[0], parts[1] if len(parts) > 1 else "")
    out = ItemColumns()
    if "segments" in files:
        done = _segment_rows(out, files["segments"], data_dir, recordings, texts)
    else:
        done = set(recordings)
        for recid, (uri, error) in entries:   # a repeated RECID keeps its row (→ duplicate id)
            out.add(recid, uri or f"{data_dir}/wav.scp", texts.get(recid), error)
    for uttid, words in texts.items():
        if uttid not in done:
            where = "segments" if "segments" in files else "wav.scp"
            out.add(uttid, f"{data_dir}/text", words,
                    f"no audio: utterance {uttid} of text has no {where} entry")
    return out.table()


def _segment_rows(out: ItemColumns, data: bytes, data_dir: str, recordings: dict,
                  texts: dict) -> set[str]:
    """Append one row per ``segments`` line; returns the utterance ids seen."""
    seen = set()
    for parts in _table_lines(data, f"{data_dir}/segments"):
        uttid = parts[0]
        seen.add(uttid)
        reference = texts.get(uttid)
        try:
            recid, start, end = _segment(parts)
        except ValueError as e:
            out.add(uttid, f"{data_dir}/segments", reference, str(e))
            continue
        if recid not in recordings:
            out.add(uttid, f"{data_dir}/segments", reference,
                    f"recording {recid} of segment {uttid} is not in wav.scp")
            continue
        uri, error = recordings[recid]
        out.add(uttid, uri or f"{data_dir}/wav.scp", reference, error,
                None if error else start, None if error else end)
    return seen
