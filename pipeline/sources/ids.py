"""Utterance ids: derived from paths, keys or row numbers, and made unique (first one wins)."""

from __future__ import annotations

import posixpath

DUPLICATE_ID = "duplicate id"


def strip_extension(name: str) -> str:
    """``sub/b3.flac`` → ``sub/b3`` (only the last extension of the last component goes)."""
    head, tail = posixpath.split(name)
    stem = tail.rsplit(".", 1)[0] if "." in tail.lstrip(".") else tail
    return posixpath.join(head, stem) if head else stem


def relative_id(root: str, path: str) -> str:
    """Id of a file found under ``root``: its relative path without extension (``sub/b3``)."""
    root = root.replace("\\", "/").rstrip("/")
    path = path.replace("\\", "/")
    if root and path.startswith(root + "/"):
        path = path[len(root) + 1:]
    else:
        path = posixpath.basename(path)
    return strip_extension(path)


def shard_stem(path: str) -> str:
    """``s3://b/train-00001.parquet`` → ``train-00001``."""
    base = posixpath.basename(path.rstrip("/"))
    return base.split(".", 1)[0] if not base.startswith(".") else base


def parquet_row_id(shard_path: str, row: int) -> str:
    """Id of a Parquet row without an id column: ``<shard stem>/<row index>``."""
    return f"{shard_stem(shard_path)}/{row}"


def webdataset_split(member: str) -> tuple[str, str]:
    """WebDataset member name → (key, extension): the key runs to the first dot of the basename.

    ``a/b/utt1.flac`` → (``a/b/utt1``, ``flac``); ``utt1.seg.json`` → (``utt1``, ``seg.json``).
    """
    head, tail = posixpath.split(member)
    stem, _, ext = tail.partition(".")
    key = posixpath.join(head, stem) if head else stem
    return key, ext.lower()


def first_occurrences(ids: list[str]) -> list[bool]:
    """For each id, whether it is the first with that value (later repeats are duplicates)."""
    seen: set[str] = set()
    flags = []
    for uid in ids:
        flags.append(uid not in seen)
        seen.add(uid)
    return flags
