"""Conventions shared by the pure source readers (manifests, LibriSpeech, Kaldi): text decoding,
derived ids, span suffixes, audio path resolution, and a column-wise builder of ``ITEM_SCHEMA`` rows.

Id rule (design.md "Ids and sources"): a path relative to a folder without its extension, or the
whole path without its extension when it lies outside that folder (never the basename); a span adds
``@<start>-<end>`` in seconds.
"""

from __future__ import annotations

import os
import re

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConfigError
from pipeline.sources.items import ITEM_SCHEMA
from pipeline.storage import is_remote, join_uri, strip_file_scheme


GZIP_MAGIC = b"\x1f\x8b"


def gunzip(data: bytes, uri: str, what: str = "manifest") -> bytes:
    """``data`` decompressed when it is gzip (by its magic bytes, whatever the name says).

    Raises:
        ConfigError: gzip data that cannot be decompressed (one line naming ``uri``).
    """
    if not data.startswith(GZIP_MAGIC):
        if uri.lower().endswith(".gz") and data:
            raise ConfigError(f"{what} {uri} is named .gz but is not gzip-compressed; rename it "
                              "without .gz")
        return data
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise ConfigError(f"{what} {uri} is not valid gzip ({e}); recompress it") from e


def decode_utf8(data: bytes, uri: str, what: str = "manifest") -> str:
    """``data`` as text, a leading UTF-8 BOM dropped.

    Raises:
        ConfigError: ``data`` is not UTF-8 (one line naming ``uri`` and the first bad byte).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {uri} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                          f"{e.start}); save it as UTF-8") from e


def format_seconds(seconds: float) -> str:
    """Seconds as written in ids: ``4.0`` → ``4``, ``1.25`` → ``1.25`` (microsecond precision)."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def span_suffix(start_s: float, end_s: float | None) -> str:
    """``@<start>-<end>`` appended to a derived id of a span (``@8-end``: to the end of the file)."""
    return f"@{format_seconds(start_s)}-{'end' if end_s is None else format_seconds(end_s)}"


def channel_suffix(channel: int) -> str:
    """``#ch<N>`` appended to the id of one channel of a file (``call#ch1``)."""
    return f"#ch{channel}"


def row_channel(value) -> int | None:
    """A row's ``channel`` value as a 0-based channel number (``None``: absent, the downmix).

    Raises ``ValueError`` (one line) when it is not a whole number >= 0; a list (lhotse's
    ``MultiCut``) of one channel is that channel, of several the downmix.
    """
    if isinstance(value, list):
        return row_channel(value[0]) if len(value) == 1 else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not number >= 0 or number != int(number):
        raise ValueError(f"channel {value!r} is not a channel number (0, 1, ...)")
    return int(number)


def path_id(folder: str, uri: str) -> str:
    """Derived id of the audio at ``uri``: relative to ``folder`` without extension when inside it,
    else the whole path/URI without extension (two different files never share an id)."""
    folder = folder.replace("\\", "/").rstrip("/") + "/"
    uri = uri.replace("\\", "/")
    if len(folder) > 1 and uri.startswith(folder):
        uri = uri[len(folder):]
    return drop_extension(uri)


def drop_extension(path: str) -> str:
    """``sub/b3.flac`` → ``sub/b3``, ``a/.hidden`` kept: the last extension of the last component
    (the rule of ``ids.strip_extension``, written for speed on 10⁶ rows)."""
    slash = path.rfind("/")
    dot = path.rfind(".")
    if dot > slash and path[slash + 1:dot].strip("."):
        return path[:dot]
    return path


WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def windows_drive_error(audio: str) -> str | None:
    """Why ``audio`` cannot be read here when it is a Windows path with a drive letter."""
    if WINDOWS_DRIVE.match(audio):
        return (f"audio path {audio!r} is a Windows path with a drive letter; write paths "
                "relative to the manifest (backslashes are read as /), or pass --audio-root")
    return None


def resolve_audio(prefix: str, audio: str) -> str:
    """``audio`` joined to a base folder given as ``prefix`` (``base + "/"``), as ``join_uri`` does;
    plain paths (no ``.``/``..`` components, no ``//``) take a fast path: relative ones are
    appended, absolute ones kept when the base is local.

    Spellings: backslashes (a manifest written on Windows, ``clips\\a.wav``) are read as ``/``
    (a drive-letter path is left as it is: :func:`windows_drive_error`); a leading ``~`` expands to
    the home folder, as it does for ``--input``.
    """
    if "\\" in audio and not WINDOWS_DRIVE.match(audio):
        audio = audio.replace("\\", "/")
    if audio.startswith("~"):
        audio = os.path.expanduser(audio)
    if "/." in "/" + audio or "//" in audio or "\\" in audio or "://" in audio or audio.endswith("/"):
        return join_uri(prefix, audio)
    if audio.startswith("/"):
        return join_uri(prefix, audio) if is_remote(prefix) else audio
    return prefix + audio


def absolute_base(uri: str) -> str:
    """A folder URI usable as a base on any worker: local paths made absolute, ``file://`` dropped."""
    uri = strip_file_scheme(uri)
    return uri.rstrip("/") if is_remote(uri) else os.path.abspath(uri)


class ItemColumns:
    """ITEM_SCHEMA rows of whole files or spans, gathered column-wise (fast for 10⁶ rows)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in
                                      ("id", "source", "reference", "error", "uri", "start_s", "end_s",
                                       "offset", "length", "channel")}

    def add(self, uid: str, uri: str, reference: str | None = None, error: str | None = None,
            start_s: float | None = None, end_s: float | None = None, *,
            source: str | None = None, offset: int = -1, length: int = -1,
            channel: int | None = None) -> None:
        """One row: ``uri`` whole (or bytes ``[offset, offset + length)`` of it, a tar member),
        shown as ``source`` (default ``uri``)."""
        cols = self.cols
        cols["offset"].append(offset)
        cols["length"].append(length)
        cols["channel"].append(channel)
        cols["id"].append(uid)
        cols["source"].append(uri if source is None else source)
        cols["reference"].append(reference)
        cols["error"].append(error)
        cols["uri"].append(uri)
        cols["start_s"].append(start_s)
        cols["end_s"].append(end_s)

    def table(self) -> pa.Table:
        n = len(self.cols["id"])
        constants = {"row_group": -1, "row_in_group": -1, "audio_column": None}
        arrays = [pa.array(self.cols[f.name], f.type) if f.name in self.cols
                  else pa.array([constants[f.name]] * n, f.type) for f in ITEM_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=ITEM_SCHEMA)


def keep_extensions_of_shared_ids(table: pa.Table, folder: str) -> pa.Table:
    """Derived ids that two different audio files would share keep their extension instead.

    ``x.m4a`` and ``x.mp4`` (or segments of ``long.wav`` and ``long.mp3``) both derive ``x``
    (``long@0-4``): such ids become the path with its extension (``x.m4a``, ``long.wav@0-4``), so
    two different inputs never share an id (design.md, "Ids and sources"), while a truly repeated
    input (same file, same span) keeps its id and is marked ``duplicate id`` later. Ids given by
    the source (an id column) are left alone: only rows whose id equals the derived one change.
    Cheap when nothing repeats (one Arrow count); only repeated ids are looked at in Python.
    """
    if table.num_rows < 2:
        return table
    counts = pc.value_counts(table["id"])
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return table
    rows = pc.indices_nonzero(pc.is_in(table["id"], value_set=repeated)).to_pylist()
    ids, uris = table["id"].to_pylist(), table["uri"].to_pylist()
    starts, ends = table["start_s"].to_pylist(), table["end_s"].to_pylist()
    files_of: dict[str, set[str]] = {}
    for i in rows:
        files_of.setdefault(ids[i], set()).add(uris[i])
    changed = False
    for i in rows:
        suffix = "" if starts[i] is None else span_suffix(starts[i], ends[i])
        derived = path_id(folder, uris[i]) + suffix
        if ids[i] == derived and len(files_of[ids[i]]) > 1:
            whole = folder.replace("\\", "/").rstrip("/") + "/"
            uri = uris[i].replace("\\", "/")
            ids[i] = (uri[len(whole):] if len(whole) > 1 and uri.startswith(whole) else uri) + suffix
            changed = True
    if not changed:
        return table
    return table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids, pa.string()))
