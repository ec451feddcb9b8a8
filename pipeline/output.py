"""The output location: refusing to clobber, resuming, reading results back, ``_summary.json``.

Only ``*.parquet`` files count as data (S3 writers leave 0-byte "directory" objects behind).
"""

from __future__ import annotations

import json
import posixpath

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ConfigError
from pipeline.storage import Storage

SUMMARY_NAME = "_summary.json"


def parquet_files(storage: Storage, output: str) -> list[str]:
    """Data files under ``output`` (filesystem paths, sorted); none if it does not exist."""
    fs, path = storage.filesystem(output)
    fs.invalidate_cache(path)  # object-store listings are cached; Ray's writers bypass that cache
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.find(path) if p.endswith(".parquet")
                  and not posixpath.basename(p).startswith(("_", ".")))


def has_results(storage: Storage, output: str) -> bool:
    fs, path = storage.filesystem(output)
    return bool(parquet_files(storage, output)) or fs.exists(posixpath.join(path, SUMMARY_NAME))


def prepare_output(storage: Storage, output: str, *, resume: bool, overwrite: bool) -> None:
    """Refuse an output holding results unless resuming; ``overwrite`` empties it first."""
    if not has_results(storage, output):
        return
    if overwrite:
        fs, path = storage.filesystem(output)
        fs.rm(path, recursive=True)
        return
    if not resume:
        raise ConfigError(f"--output {output} already holds results; pass --resume to add the "
                          "missing ids or --overwrite to replace them")


def read_columns(storage: Storage, output: str, columns: list[str],
                 drop_unreadable: bool = False) -> pa.Table:
    """``columns`` of every data file under ``output``, concatenated.

    With ``drop_unreadable`` a file that cannot be read (left half-written by an interrupted run)
    is deleted so that its ids are computed again.
    """
    fs, _ = storage.filesystem(output)
    tables = []
    for path in parquet_files(storage, output):
        try:
            with fs.open(path, "rb") as f:
                tables.append(pq.read_table(f, columns=columns))
        except (OSError, pa.ArrowException) as e:
            if not drop_unreadable:
                raise OSError(f"cannot read result file {path}: {e}") from e
            print(f"resume: removing unreadable result file {path} ({e})")
            fs.rm(path)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(tables, promote_options="permissive")


def existing_ids(storage: Storage, output: str) -> set[str]:
    return set(read_columns(storage, output, ["id"], drop_unreadable=True).column("id").to_pylist())


def write_summary(storage: Storage, output: str, summary: dict) -> str:
    fs, path = storage.filesystem(output)
    target = posixpath.join(path, SUMMARY_NAME)
    with fs.open(target, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    return target
