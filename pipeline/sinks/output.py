"""The output location: refusing to clobber, resuming, reading results back, ``_summary.json``.

Only ``*.parquet`` files count as data (S3 writers leave 0-byte "directory" objects behind; names
starting with ``_`` or ``.`` — the summary, temporaries of an interrupted local write — are never
data). ``_summary.json`` is written last, in one put (S3) or by rename (local disk), so its presence
means every data file is complete; a resumed run removes the old one first. Driver-side I/O is
retried like the workers' (bounded backoff, then :class:`~pipeline.retry.StorageUnavailable`),
so a transient error is never a reason to drop a file.
"""

from __future__ import annotations

import json
import posixpath
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.sinks.atomic_fs import TEMP_PREFIX, write_bytes_atomically
from pipeline.config import ConfigError
from pipeline.retry import StorageUnavailable, retry_call
from pipeline.storage import STORAGE_ERRORS, Storage, is_remote, storage_advice, storage_error_line

SUMMARY_NAME = "_summary.json"
PROBE_PREFIX = ".nle-write-probe-"


def _retry(storage: Storage, what: str, fn):
    return retry_call(fn, what=what, budget_s=storage.retry_seconds, redact=storage.redact)


def _is_data(path: str) -> bool:
    return path.endswith(".parquet") and not posixpath.basename(path).startswith(("_", "."))


def parquet_files(storage: Storage, output: str) -> list[str]:
    """Data files under ``output`` (filesystem paths, sorted); none if it does not exist."""
    fs, path = storage.filesystem(output)

    def listing() -> list[str]:
        fs.invalidate_cache(path)  # object-store listings are cached; Ray's writers bypass it
        if not fs.exists(path):
            return []
        return sorted(p for p in fs.find(path) if _is_data(p))

    return _retry(storage, f"listing {output}", listing)


def has_results(storage: Storage, output: str) -> bool:
    fs, path = storage.filesystem(output)
    return bool(parquet_files(storage, output)) or \
        _retry(storage, f"listing {output}", lambda: fs.exists(posixpath.join(path, SUMMARY_NAME)))


def check_writable(storage: Storage, output: str) -> None:
    """Write and delete a small probe object, so an unwritable output fails before any work."""
    fs, path = storage.filesystem(output)
    probe = posixpath.join(path, f"{PROBE_PREFIX}{uuid.uuid4().hex[:8]}")
    try:
        if not is_remote(output):
            fs.makedirs(path, exist_ok=True)
        _retry(storage, f"writing to {output}", lambda: fs.pipe_file(probe, b"ok"))
        _retry(storage, f"writing to {output}", lambda: fs.rm(probe))
    except STORAGE_ERRORS as e:
        if storage_advice(e):
            raise ConfigError(storage.redact(storage_error_line(f"--output {output}", e))) from e
        raise ConfigError(storage.redact(
            f"--output {output} is not writable ({type(e).__name__}: {e}); pick a location you "
            "can write to, or fix its permissions / bucket name / credentials")) from e


def remove_leftovers(storage: Storage, output: str) -> None:
    """Before a resume: the old summary (stale until this run ends) and temporaries of a killed
    local writer."""
    fs, path = storage.filesystem(output)
    fs.invalidate_cache(path)
    stale = [p for p in fs.find(path) if posixpath.basename(p).startswith(TEMP_PREFIX)]
    summary = posixpath.join(path, SUMMARY_NAME)
    if fs.exists(summary):
        stale.append(summary)
    for p in stale:
        fs.rm(p)


def clean_for_resume(storage: Storage, output: str) -> None:
    """:func:`remove_leftovers` of an output holding results, retried; called by a resumed run
    once it is sure to write (after :func:`prepare_output`, which leaves a resumed output as it
    is, and after the run's own checks: a refused resume changes nothing)."""
    if has_results(storage, output):
        _retry(storage, f"cleaning {output}", lambda: remove_leftovers(storage, output))


def prepare_output(storage: Storage, output: str, *, resume: bool, overwrite: bool) -> None:
    """Refuse an output holding results unless resuming (then left as it is: see
    :func:`clean_for_resume`); ``overwrite`` empties it first. Checks that the output is writable.
    Missing credentials or an endpoint that does not answer are a :class:`ConfigError` (one line
    with the fix)."""
    try:
        _prepare_output(storage, output, resume=resume, overwrite=overwrite)
    except STORAGE_ERRORS as e:
        if storage_advice(e) is None and isinstance(e, OSError):
            raise
        raise ConfigError(storage.redact(storage_error_line(f"--output {output}", e))) from e
    except StorageUnavailable as e:   # before any work: a setting to check, nothing to resume
        if e.__cause__ is None or storage_advice(e.__cause__) is None:
            raise
        raise ConfigError(storage.redact(storage_error_line(f"--output {output}", e.__cause__))) from e


def _prepare_output(storage: Storage, output: str, *, resume: bool, overwrite: bool) -> None:
    if has_results(storage, output):
        if overwrite:
            fs, path = storage.filesystem(output)
            _retry(storage, f"emptying {output}", lambda: fs.rm(path, recursive=True))
        elif not resume:
            raise ConfigError(f"--output {output} already holds results; pass --resume to add "
                              "the missing ids or --overwrite to replace them")
    check_writable(storage, output)


def _read_file(fs, path: str, columns: list[str]) -> pa.Table:
    """``columns`` of one data file; those it lacks (written by an earlier version) are left out
    here and come back as nulls when the files are concatenated."""
    with fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        names = set(parquet.schema_arrow.names)
        return parquet.read(columns=[c for c in columns if c in names])


def read_columns(storage: Storage, output: str, columns: list[str],
                 drop_unreadable: bool = False) -> pa.Table:
    """``columns`` of every data file under ``output``, concatenated.

    With ``drop_unreadable`` a file that cannot be read (damaged outside this tool) is deleted so
    that its ids are computed again.
    """
    fs, _ = storage.filesystem(output)
    tables = []
    for path in parquet_files(storage, output):
        try:
            tables.append(_retry(storage, f"reading {path}",
                                 lambda p=path: _read_file(fs, p, columns)))
        except (OSError, pa.ArrowException) as e:
            if not drop_unreadable:
                raise OSError(storage.redact(f"cannot read result file {path}: {e}")) from e
            print(f"resume: removing unreadable result file {path} ({e})")
            fs.rm(path)
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(tables, promote_options="permissive")


def existing_ids(storage: Storage, output: str) -> pa.Array:
    """The ids already written under ``output``, as one Arrow string array (``--resume``)."""
    ids = read_columns(storage, output, ["id"], drop_unreadable=True).column("id")
    return pc.cast(ids, pa.string()).combine_chunks()


def write_summary(storage: Storage, output: str, summary: dict) -> str:
    """``_summary.json`` in one step: a single put on object stores, a rename on local disk."""
    fs, path = storage.filesystem(output)
    target = posixpath.join(path, SUMMARY_NAME)
    data = storage.redact(json.dumps(summary, indent=2, sort_keys=True)).encode()
    if is_remote(output):
        _retry(storage, f"writing {target}", lambda: fs.pipe_file(target, data))
    else:
        write_bytes_atomically(target, data)
    return target
