"""Utterance ids: derived from paths, keys or row numbers, and repeats found on Arrow columns.

Rules (design.md, "Ids and sources"): the source's id column when it has one; else a file's path
relative to the input root without its extension (``sub/b3``); ``<shard stem>/<row index>`` for a
Parquet or Arrow row (the shard's folder kept in front when two shards of an input share a
stem: :func:`shard_prefixes`); WebDataset's key for a tar member. Only the same id given twice is
a duplicate, and the first one (in input order) wins.
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


def shard_prefixes(root: str, shards: list[str], keep_folders: bool = False) -> dict[str, str]:
    """What derived ids of each Parquet/Arrow shard of one input start with (``<prefix>/<row>``):
    the first of these that no two of ``shards`` share: the shard's :func:`shard_stem`
    (``train-00001``); the stem under the shard's folder relative to ``root``
    (``default/train/0000``); the path relative to ``root`` without its extension (distinct for
    distinct files). ``keep_folders`` (several inputs, ``root`` their common folder) starts at the
    second, so that the same inputs always give the same ids.

    ``default/train/0000.parquet`` and ``default/test/0000.parquet`` under ``root`` give
    ``default/train/0000`` and ``default/test/0000``; shards with distinct names keep their stems.
    """
    def foldered(path: str) -> str:
        head = posixpath.dirname(relative_id(root, path)) if root else ""
        return posixpath.join(head, shard_stem(path)) if head else shard_stem(path)

    rules = [foldered, lambda path: relative_id(root, path)]
    if not keep_folders:
        rules.insert(0, shard_stem)
    for rule in rules:
        prefixes = {path: rule(path) for path in shards}
        if len(set(prefixes.values())) == len(prefixes):
            return prefixes
    return prefixes


def base_prefix(base: str, folder: str) -> str:
    """``folder`` relative to ``base`` as an id prefix (``a/``); ``""`` without a ``base``."""
    if not base:
        return ""
    rel = relative_id(base, folder.rstrip("/") + "/x")
    return rel[:-1]


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
