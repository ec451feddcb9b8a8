"""Atomic files on local disk: written under a hidden temporary name, renamed into place on close.

Ray's Parquet writer streams each file straight to its final path; on a local disk a reader (or a
``--resume`` after a crash) could then see half a file. Through :func:`atomic_local_filesystem`
a data file appears whole or not at all. (On S3 an object becomes visible only when its upload
completes, so no wrapper is needed there.) Leftover temporaries of a killed writer start with
``TEMP_PREFIX`` and are ignored by readers and removed by ``--resume``.
"""

from __future__ import annotations

import os
import uuid

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs

TEMP_PREFIX = ".tmp-"
PARQUET_MAGIC = b"PAR1"   # a Parquet file is complete only when it ends with its footer magic


def temp_path_for(path: str) -> str:
    """A unique hidden name in the same folder (so the final rename stays on one filesystem)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")


class AtomicFile:
    """A binary write handle on a temporary file that is renamed to ``path`` on a clean close.

    With ``ends_with``, a close whose data does not end with those bytes (a writer that failed
    half-way and closed its stream) discards the file instead of publishing it.
    """

    def __init__(self, path: str, ends_with: bytes = b""):
        self.path = path
        self.temp = temp_path_for(path)
        self.ends_with = ends_with
        self._tail = b""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._file = open(self.temp, "wb")  # noqa: SIM115 - closed in close()

    def write(self, data) -> int:
        if self.ends_with:
            n = len(self.ends_with)
            self._tail = (self._tail + bytes(memoryview(data).cast("B")[-n:]))[-n:]
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        if self._file.closed:
            return
        if self._tail != self.ends_with:
            self.abort()
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        """Drop the temporary file without publishing it."""
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self.temp):
            os.remove(self.temp)


class AtomicLocalHandler(pafs.FSSpecHandler):
    """The local filesystem for pyarrow, with every output stream written atomically."""

    def __init__(self):
        super().__init__(fsspec.filesystem("file"))

    def __reduce__(self):  # shipped to Ray workers
        return (AtomicLocalHandler, ())

    def get_type_name(self) -> str:
        return "atomic-local"

    def open_output_stream(self, path, metadata):
        ends_with = PARQUET_MAGIC if path.endswith(".parquet") else b""
        return pa.PythonFile(AtomicFile(path, ends_with), mode="w")


def atomic_local_filesystem() -> pafs.PyFileSystem:
    return pafs.PyFileSystem(AtomicLocalHandler())


def write_bytes_atomically(path: str, data: bytes) -> None:
    """``data`` at ``path`` (local), never visible half-written."""
    handle = AtomicFile(path)
    try:
        handle.write(data)
    except BaseException:
        handle.abort()
        raise
    handle.close()
