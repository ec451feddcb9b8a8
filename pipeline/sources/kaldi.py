"""Kaldi data directories: ``wav.scp`` (+ ``text``, optional ``segments``)."""

from __future__ import annotations

import pyarrow as pa


def kaldi_table(data_dir: str, files: dict[str, bytes], audio_root: str | None = None) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one Kaldi data dir; ``files`` maps ``wav.scp``, ``text``
    and ``segments`` (when present) to their bytes. Runs inside a Ray task."""
    raise NotImplementedError
