"""LibriSpeech-style trees: ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter giving the references.

A transcript line is ``UTTID WORDS...`` (the id, one run of whitespace, the text), as in OpenSLR
12's release and lhotse's ``recipes/librispeech.py``. Every audio file of the chapter is one row
(id: its path relative to the tree's root without extension, as for folders); its reference is the
line whose ``UTTID`` equals the file's stem, or null when there is none. A line whose audio file is
missing becomes an error row ``missing audio`` so that no utterance disappears.
"""

from __future__ import annotations

import posixpath

import pyarrow as pa

from pipeline.sources.ids import strip_extension
from pipeline.sources.conventions import ItemColumns, decode_utf8, path_id

MISSING_AUDIO = "missing audio"


def parse_transcripts(text: str) -> list[tuple[str, str]]:
    """``(UTTID, words)`` of each non-blank line, in file order (``words`` may be ``''``)."""
    pairs = []
    for line in text.split("\n"):
        parts = line.strip().split(maxsplit=1)
        if parts:
            pairs.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return pairs


def librispeech_table(trans_uri: str, trans_text: bytes, audio_uris: list[str], root: str) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one chapter. Pure (runs inside a Ray task).

    Args:
        trans_uri: the chapter's ``*.trans.txt`` (path or URI).
        trans_text: its bytes (UTF-8, a BOM allowed).
        audio_uris: the audio files of the chapter folder, in the order rows should have.
        root: the tree's root (the ``--input``); ids are relative to it.

    Returns the audio files' rows in ``audio_uris`` order, then one ``missing audio`` error row per
    transcript line without an audio file (id: ``<chapter folder>/<UTTID>`` relative to ``root``).
    A repeated transcript line is an error row too (its id repeats the first one's).

    Raises:
        ConfigError: the transcript file is not UTF-8.
    """
    pairs = parse_transcripts(decode_utf8(trans_text, trans_uri, "LibriSpeech transcript file"))
    references: dict[str, str] = {}
    repeated: list[str] = []
    for uttid, words in pairs:
        if uttid in references:
            repeated.append(uttid)
        else:
            references[uttid] = words
    out = ItemColumns()
    stems = set()
    for uri in audio_uris:
        stem = strip_extension(posixpath.basename(uri.replace("\\", "/")))
        stems.add(stem)
        out.add(path_id(root, uri), uri, references.get(stem))
    chapter = trans_uri.replace("\\", "/").rsplit("/", 1)[0]
    for uttid in references:
        if uttid not in stems:
            out.add(path_id(root, f"{chapter}/{uttid}"), trans_uri, references[uttid], MISSING_AUDIO)
    for uttid in repeated:
        out.add(path_id(root, f"{chapter}/{uttid}"), trans_uri, None,
                f"repeated transcript line for {uttid} in {posixpath.basename(trans_uri)}")
    return out.table()
