"""LibriSpeech-style trees: ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with one
``<speaker>-<chapter>.trans.txt`` per chapter giving the references."""

from __future__ import annotations

import pyarrow as pa


def librispeech_table(trans_uri: str, trans_text: bytes, audio_uris: list[str], root: str) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one chapter: every audio file in ``audio_uris`` (the
    chapter folder's audio) with its reference from ``trans_text``. Runs inside a Ray task."""
    raise NotImplementedError
