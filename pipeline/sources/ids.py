"""Utterance ids: derived from paths, keys or row numbers, and repeats found on Arrow columns.

Rules (design.md, "Ids and sources"): the source's id column when it has one; else a file's path
relative to the input root without its extension (``sub/b3``); ``<shard stem>/<row index>`` for a
Parquet row; WebDataset's key for a tar member. Only the same id given twice is a duplicate, and
the first one (in input order) wins.
"""

from __future__ import annotations

import posixpath

import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE_ID = "duplicate id"


def strip_extension(name: str) -> str:
    """``sub/b3.flac`` → ``sub/b3`` (only the last extension of the last component goes)."""
    head, tail = posixpath.split(name)
    stem = tail.rsplit(".", 1)[0] if "." in tail.lstrip(".") else tail
    return posixpath.join(head, stem) if head else stem


def relative_id(root: str, path: str) -> str:
    """Id of a file found under ``root``: its relative path without extension (``sub/b3``); the
    whole path without extension when it lies outside ``root``, so that two different files never
    share an id (``/data/timit/dr1/spk1/SA1.WAV`` → ``/data/timit/dr1/spk1/SA1``)."""
    root = root.replace("\\", "/").rstrip("/")
    path = path.replace("\\", "/")
    if root and path.startswith(root + "/"):
        path = path[len(root) + 1:]
    return strip_extension(path)


def shard_stem(path: str) -> str:
    """``s3://b/train-00001.parquet`` → ``train-00001``."""
    base = posixpath.basename(path.rstrip("/"))
    return base.split(".", 1)[0] if not base.startswith(".") else base


def base_stem(base: str, path: str) -> str:
    """What derived ids of the shard at ``path`` start with: its :func:`shard_stem`, under the
    shard's folder relative to ``base`` when ``base`` is given (several inputs:
    ``pipeline.sources.listing.plan_units``): ``/d/a/train-0.parquet`` from ``/d`` →
    ``a/train-0``."""
    if not base:
        return shard_stem(path)
    head = posixpath.dirname(relative_id(base, path))
    return posixpath.join(head, shard_stem(path)) if head else shard_stem(path)


def base_prefix(base: str, folder: str) -> str:
    """``folder`` relative to ``base`` as an id prefix (``a/``); ``""`` without a ``base``."""
    if not base:
        return ""
    rel = relative_id(base, folder.rstrip("/") + "/x")
    return rel[:-1]


def parquet_row_id(shard_path: str, row: int) -> str:
    """Id of a Parquet row without an id column: ``<shard stem>/<row index>``."""
    return f"{shard_stem(shard_path)}/{row}"


def webdataset_split(member: str) -> tuple[str, str]:
    """WebDataset member name → (key, extension): the key runs to the first dot of the basename
    (webdataset's ``base_plus_ext``, also Ray's ``read_webdataset``).

    ``a/b/utt1.flac`` → (``a/b/utt1``, ``flac``); ``utt1.seg.json`` → (``utt1``, ``seg.json``);
    ``pod/Track 2.5 (Live).flac`` → (``pod/Track 2``, ``5 (live).flac``).
    """
    head, tail = posixpath.split(member)
    stem, _, ext = tail.partition(".")
    key = posixpath.join(head, stem) if head else stem
    return key, ext.lower()


def first_seen(ids: pa.Array | pa.ChunkedArray, order: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Per row, whether it is the first of its id (smallest ``order``, which must be unique);
    the other rows with that id are the duplicates. Computed on Arrow, no Python object per row."""
    table = pa.table({"id": ids, "order": order})
    firsts = table.group_by("id").aggregate([("order", "min")]).column("order_min")
    return pc.is_in(table.column("order"), value_set=firsts.combine_chunks())
