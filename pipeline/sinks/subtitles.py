"""Subtitle and word-time files (``--subtitles srt,vtt,ctm``), one per input under ``OUT/subtitles/``.

Written by a Ray stage after scoring (:func:`write_subtitles`): each task writes the files of its
own rows and passes its batch on unchanged, so the driver never sees a row. The file of row ``id``
is ``OUT/subtitles/<id>.<format>`` (an id's ``/`` parts become folders; empty, ``.`` and ``..``
parts are dropped). Error rows get no file; a silent row gets an empty one (VTT: the header only).

Cues (SRT, VTT) are made from the row's ``words`` (file seconds), in order. A new cue starts when

* the pause since the previous word's end is at least :data:`PAUSE_S` (0.5 s), or
* the cue's line would pass :data:`MAX_LINE_CHARS` (42 characters, the common broadcast limit;
  a single longer word is a cue of its own), or
* the cue would last longer than :data:`MAX_CUE_S` (7 s).

A cue runs from its first word's start to its last word's end (times on the 80 ms grid of the BPE
head, see ``model/alignment.py``). A row that has text but no word times (``timestamps_status``
other than ``ok``) gets one cue per segment with its text, wrapped at the line limit, over the
segment's real span; its CTM has no line, since CTM is word times only.

CTM (NIST sclite / Kaldi): one line per word, ``<id> 1 <start> <duration> <word> <confidence>``,
seconds with 3 decimals, channel ``1``; whitespace in an id is replaced by ``_``.
"""

from __future__ import annotations

import posixpath
import textwrap

import pyarrow as pa

from pipeline.retry import retry_call
from pipeline.sinks.atomic_fs import write_bytes_atomically
from pipeline.storage import Storage, is_remote

PAUSE_S = 0.5
MAX_LINE_CHARS = 42
MAX_CUE_S = 7.0
SUBTITLES_DIR = "subtitles"
COLUMNS = ["id", "error", "silent", "text", "words", "segments", "segment_texts"]


def cues(words: list[dict]) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, text)`` cues from timed words (the rule in the module docstring)."""
    out: list[tuple[float, float, str]] = []
    start = end = 0.0
    line: list[str] = []
    for w in words:
        text = " ".join([*line, w["word"]])
        if line and (w["start_s"] - end >= PAUSE_S or len(text) > MAX_LINE_CHARS
                     or w["end_s"] - start > MAX_CUE_S):
            out.append((start, end, " ".join(line)))
            line = []
        if not line:
            start = max(w["start_s"], out[-1][1] if out else 0.0)  # never before the last cue's end
        line.append(w["word"])
        end = max(w["end_s"], start)
    if line:
        out.append((start, end, " ".join(line)))
    return out


def segment_cues(segments: list[dict], texts: list[str]) -> list[tuple[float, float, str]]:
    """One cue per segment with text, wrapped at :data:`MAX_LINE_CHARS` (rows without word times)."""
    return [(s["start_s"], s["end_s"], "\n".join(textwrap.wrap(t, MAX_LINE_CHARS, break_long_words=False)))
            for s, t in zip(segments, texts) if t and t.strip()]


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(cue_list) -> str:
    return "".join(f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n\n"
                   for i, (a, b, text) in enumerate(cue_list, 1))


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(cue_list) -> str:
    body = "".join(f"{_clock(a, '.')} --> {_clock(b, '.')}\n{_vtt_escape(text)}\n\n" for a, b, text in cue_list)
    return "WEBVTT\n\n" + body


def ctm(utterance: str, words: list[dict]) -> str:
    name = "_".join(utterance.split()) or "_"
    return "".join(f"{name} 1 {w['start_s']:.3f} {w['end_s'] - w['start_s']:.3f} {w['word']} {w['confidence']:.4f}\n"
                   for w in words)


def files_for(row: dict, formats) -> dict[str, str]:
    """``{format: file text}`` for one output row (none for an error row)."""
    if row.get("error"):
        return {}
    words = row.get("words")
    if words is not None:
        cue_list = cues(words)
    else:
        segments = row.get("segments") or []
        texts = row.get("segment_texts") or ([row.get("text") or ""] if len(segments) == 1 else [])
        cue_list = segment_cues(segments, texts)
    out = {}
    for fmt in formats:
        if fmt == "srt":
            out[fmt] = srt(cue_list)
        elif fmt == "vtt":
            out[fmt] = vtt(cue_list)
        elif fmt == "ctm":
            out[fmt] = ctm(row["id"], words or [])
    return out


def subtitle_path(root: str, uid: str, fmt: str) -> str:
    parts = [p for p in uid.split("/") if p not in ("", ".", "..")] or ["_"]
    return posixpath.join(root, SUBTITLES_DIR, *parts) + f".{fmt}"


def write_subtitles(batch: pa.Table, *, storage: Storage, output: str, formats: tuple[str, ...]) -> pa.Table:
    """Ray batch function: write the subtitle files of ``batch``'s rows; the batch passes unchanged."""
    fs, root = storage.filesystem(output)
    present = [c for c in COLUMNS if c in batch.column_names]
    for row in batch.select(present).to_pylist():
        for fmt, text in files_for(row, formats).items():
            path = subtitle_path(root, row["id"], fmt)
            data = text.encode("utf-8")
            if is_remote(output):
                retry_call(lambda p=path, d=data: fs.pipe_file(p, d), what=f"writing {path}",
                           budget_s=storage.retry_seconds, redact=storage.redact)
            else:
                write_bytes_atomically(path, data)
    return batch
