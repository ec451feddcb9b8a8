"""The column names of an input, found by the same listing and parsers that index it.

``jobs.evaluate`` picks each set's reference column from these names (the leaderboard's first of
``text``, ``sentence``, ...), so every layout ``jobs.transcribe`` reads is sniffed the same way:
gzip manifests, a ``.json`` holding one (pretty-printed) JSON array, NeMo tarred manifests, HF
``audiofolder`` metadata, Parquet footers, ``save_to_disk`` Arrow schemas. Runs on the driver and
reads at most :data:`SNIFF_BYTES` of one manifest (a whole JSON array only when it is that small).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ConfigError
from pipeline.sources.conventions import GZIP_MAGIC, decode_utf8
from pipeline.sources.listing import list_input
from pipeline.sources.manifest import parse_manifest
from pipeline.storage import Storage

SNIFF_BYTES = 1 << 20
SNIFF_ROWS = 1000
# lhotse supervisions and cuts keep the transcript in ``text``.
LHOTSE_COLUMNS = ["id", "text"]


def _head(storage: Storage, uri: str) -> tuple[bytes, bool]:
    """(the first ``SNIFF_BYTES`` of ``uri``, decompressed when gzip; whether that is all of it)."""
    import gzip
    import zlib

    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as f:
        data = f.read(SNIFF_BYTES + 1)
        if not data.startswith(GZIP_MAGIC):
            return data[:SNIFF_BYTES], len(data) <= SNIFF_BYTES
        f.seek(0)
        try:
            with gzip.GzipFile(fileobj=f) as z:
                data = z.read(SNIFF_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise ConfigError(f"manifest {uri} is not valid gzip ({e}); recompress it") from e
    return data[:SNIFF_BYTES], len(data) <= SNIFF_BYTES


def manifest_columns(storage: Storage, uri: str) -> list[str]:
    """Column names of a manifest (CSV/TSV header; keys of its first JSON rows), in first-seen
    order."""
    data, whole = _head(storage, uri)
    if not whole:                          # keep whole lines only
        data = data[:data.rfind(b"\n") + 1] or data
    text = decode_utf8(data, uri) if whole else data.decode("utf-8-sig", errors="ignore")
    kind_uri = uri[:-3] if uri.lower().endswith(".gz") else uri
    header, rows = parse_manifest(text, kind_uri)
    if header is not None:
        return header
    names: dict[str, None] = {}
    for _, row, _ in rows[:SNIFF_ROWS]:
        if row is not None:
            names.update(dict.fromkeys(row))
    return list(names)


def input_columns(storage: Storage, uri: str, fmt: str = "auto") -> list[str]:
    """Column names of input ``uri`` read as ``fmt``; ``[]`` for layouts without columns (audio
    folders, tars, LibriSpeech, Kaldi). Raises :class:`ConfigError` as transcribe's listing does."""
    listing = list_input(uri, fmt, storage)
    first = listing.files[0]
    if listing.format in ("manifest", "nemo-tarred"):
        manifest = next(f for f in listing.files if listing.format == "manifest"
                        or not f.lower().endswith(".tar"))
        return manifest_columns(storage, manifest)
    if listing.format == "lhotse":
        return list(LHOTSE_COLUMNS)
    fs, path = storage.filesystem(first)
    if listing.format == "parquet":
        with fs.open(path, "rb") as f:
            return pq.ParquetFile(f).schema_arrow.names
    if listing.format == "arrow":
        with fs.open(path, "rb") as f:
            source = pa.PythonFile(f, mode="r")
            if source.read(6) == b"ARROW1":
                source.seek(0)
                return pa.ipc.open_file(source).schema.names
            source.seek(0)
            return pa.ipc.read_schema(pa.ipc.read_message(source)).names
    return []
