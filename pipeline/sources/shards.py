"""Indexing shards inside a Ray task: Parquet (Hugging Face datasets layout) and WebDataset tars.

Only metadata is read: a Parquet shard's footer plus its id and text columns (never the audio
column); a tar's member headers (seeking past the data) plus its small ``.txt``/``.json``
members. Audio bytes are fetched later: a Parquet row group's audio column once (the index's blocks
hold whole row groups up to the fetch: ``pipeline/stages/row_groups.py``), a tar member by its byte
range.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.formats import AUDIO_EXTENSIONS, is_ghost
from pipeline.sources.ids import shard_stem, strip_extension, webdataset_split
from pipeline.sources.items import (
    ITEM_SCHEMA, file_item, items_table, range_item, with_ghosts, with_group_sizes,
)

DEFAULT_PARQUET_AUDIO_COLUMN = "audio"
# Row groups are gathered into index blocks of at least this many rows (a row group is never
# split: the audio of one row group is then read once).
PARQUET_BLOCK_ROWS = 256
TEXT_EXTENSIONS = ("txt", "json")
MAX_TEXT_MEMBER_BYTES = 1 << 20


def _as_text(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _string_column(part: pa.Table, name: str, uri: str) -> pa.Array:
    column = part.column(name).combine_chunks()
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ConfigError(f"Parquet shard {uri}: column {name!r} is {column.type}, not text; "
                          "fix --id-column/--text-column") from e


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def parquet_group_table(uri: str, part: pa.Table | None, first_row: int, num_rows: int,
                        group: int, columns: SourceColumns, audio_col: str,
                        stem: str | None = None) -> pa.Table:
    """Index items (``ITEM_SCHEMA``) of one row group, built column-wise.

    ``part`` holds the group's id/text columns (those the shard has); a row without an id gets
    ``<stem>/<row index>`` (``stem``: the shard's stem unless given).
    """
    rows = pa.array(range(first_row, first_row + num_rows), pa.int64())
    row_text = pc.cast(rows, pa.string())
    derived = pc.binary_join_element_wise(f"{stem or shard_stem(uri)}/", row_text, "")
    names = part.column_names if part is not None else []
    ids = derived
    if columns.id in names:
        given = _blank_to_null(_string_column(part, columns.id, uri))
        ids = pc.coalesce(given, derived)
    texts = (_blank_to_null(_string_column(part, columns.text, uri)) if columns.text in names
             else pa.nulls(num_rows, pa.string()))

    def const(value, type_):
        return pa.array([value] * num_rows, type_)

    return pa.table({
        "id": ids, "source": pc.binary_join_element_wise(f"{uri}#", row_text, ""),
        "reference": texts, "error": pa.nulls(num_rows, pa.string()),
        "uri": const(uri, pa.string()), "offset": const(-1, pa.int64()),
        "length": const(-1, pa.int64()), "row_group": const(group, pa.int32()),
        "row_in_group": pa.array(range(num_rows), pa.int32()),
        "audio_column": const(audio_col, pa.string()),
        "start_s": pa.nulls(num_rows, pa.float64()), "end_s": pa.nulls(num_rows, pa.float64()),
        "channel": pa.nulls(num_rows, pa.int32()),
    }, schema=ITEM_SCHEMA)


def audio_group_bytes(metadata: pq.FileMetaData, group: int, audio_col: str) -> int:
    """Uncompressed bytes of row group ``group``'s audio column chunk(s) (the struct's
    ``bytes``/``path`` leaves), from the footer: what reading that group's audio holds in memory."""
    chunks = metadata.row_group(group)
    return sum(chunks.column(i).total_uncompressed_size for i in range(chunks.num_columns)
               if chunks.column(i).path_in_schema.split(".", 1)[0] == audio_col)


def parquet_index(uri: str, f, columns: SourceColumns, stem: str | None = None
                  ) -> Iterator[pa.Table]:
    """Index blocks of one Parquet shard opened as ``f``, whole row groups at a time, each
    remembering its row groups' audio sizes (``items.with_group_sizes``).

    ``stem``: what derived ids start with (default: the shard's stem).

    Raises :class:`ConfigError` when the audio column is missing; an unreadable shard yields one
    error row (``<uri>#error``) after the rows read so far.
    """
    audio_col = columns.audio or DEFAULT_PARQUET_AUDIO_COLUMN
    pending: list[pa.Table] = []
    sizes: list[tuple[int, int]] = []
    row = 0
    try:
        shard = pq.ParquetFile(f)
        names = shard.schema_arrow.names
        if audio_col not in names:
            raise ConfigError(f"Parquet shard {uri} has no audio column {audio_col!r} "
                              f"(columns: {', '.join(names)}); fix --audio-column")
        wanted = [c for c in dict.fromkeys((columns.id, columns.text)) if c in names]
        for group in range(shard.num_row_groups):
            size = shard.metadata.row_group(group).num_rows
            part = shard.read_row_group(group, columns=wanted) if wanted else None
            pending.append(parquet_group_table(uri, part, row, size, group, columns, audio_col,
                                               stem))
            sizes.append((group, audio_group_bytes(shard.metadata, group, audio_col)))
            row += size
            if sum(t.num_rows for t in pending) >= PARQUET_BLOCK_ROWS:
                yield with_group_sizes(pa.concat_tables(pending), sizes)
                pending, sizes = [], []
    except (OSError, pa.ArrowException) as e:
        pending.append(items_table([file_item(f"{uri}#error", uri, error=(
            f"unreadable Parquet shard after {row} rows: {type(e).__name__}: {e}"))]))
    if pending:
        yield with_group_sizes(pa.concat_tables(pending), sizes)


def member_text(data: bytes) -> str | None:
    """A text member's content, or ``None`` when it is not UTF-8 text (binary data, such as a
    macOS AppleDouble file, is never taken for a reference)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def reference_from_member(ext: str, data: bytes, columns: SourceColumns) -> str | None:
    """Reference text from a ``.txt`` member or the text field of a ``.json`` member."""
    text = member_text(data)
    if text is None:
        return None
    if ext == "txt":
        return _as_text(text.strip())
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return _as_text(record.get(columns.text)) if isinstance(record, dict) else None


def id_from_member(data: bytes, columns: SourceColumns) -> str | None:
    """The id field (``--id-column``) of a ``.json`` member, if it has one."""
    text = member_text(data)
    try:
        record = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None
    return _as_text(record.get(columns.id)) if isinstance(record, dict) else None


@dataclass(frozen=True)
class Member:
    """A tar member that holds data: its name and byte range, or why it cannot be read."""

    name: str
    offset: int
    size: int
    error: str | None = None


def tar_members(tar: tarfile.TarFile, ghosts: list[int]) -> Iterator[Member]:
    """The data members of an open tar, in order, with links resolved.

    A hard link is read as its target's bytes (the target comes earlier in the archive); a
    symbolic link is a member with an ``error`` naming it and its target; directories and other
    special members are passed over. macOS metadata (``._x``, ``__MACOSX/``, ``.DS_Store``) is
    skipped and counted in ``ghosts[0]``.
    """
    seen: dict[str, Member] = {}
    for info in tar:
        name = info.name[2:] if info.name.startswith("./") else info.name
        if is_ghost(name):
            ghosts[0] += 1
            continue
        if info.isfile():
            member = Member(name, info.offset_data, info.size)
        elif info.islnk():
            target = seen.get(posixpath.normpath(info.linkname).removeprefix("./"))
            member = Member(name, target.offset, target.size, target.error) if target else Member(
                name, 0, 0, f"tar member {name!r} is a hard link to {info.linkname!r}, which is "
                            "not stored before it in the tar; store the file itself")
        elif info.issym():
            inside = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
            where = (f"to {inside!r} in this tar" if inside in seen
                     else f"to {info.linkname!r}, outside the tar")
            member = Member(name, 0, 0, f"tar member {name!r} is a symbolic link {where}; links "
                                        "are not followed: store the file itself (tar without -h "
                                        "keeps links, tar -h stores their targets)")
        else:
            continue
        seen[name] = member
        yield member


def _scan_tar(f, columns: SourceColumns, audio: list, texts: dict, ids: dict,
              ghosts: list[int]) -> None:
    """Member headers in order: audio members into ``audio`` (a :class:`Member`), references of
    text members into ``texts`` and ``.json`` id fields into ``ids``, by member stem. Seeks past
    the data of everything else."""
    with tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar_members(tar, ghosts):
            name = member.name
            last = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if last in AUDIO_EXTENSIONS:
                audio.append(member)
            elif last in TEXT_EXTENSIONS and member.error is None and \
                    member.size <= MAX_TEXT_MEMBER_BYTES:
                f.seek(member.offset)
                data = f.read(member.size)
                texts.setdefault(strip_extension(name), reference_from_member(last, data, columns))
                if last == "json" and (uid := id_from_member(data, columns)) is not None:
                    ids.setdefault(strip_extension(name), uid)


def tar_index(uri: str, f, columns: SourceColumns) -> pa.Table:
    """Index items of one WebDataset shard opened as ``f`` (seekable): one per audio member.

    The id is the ``.json`` member's id field (``--id-column``) when it has one (a key cannot hold
    every id: it ends at the first dot), else the member's WebDataset key (path up to the first
    dot of the basename). The first
    audio member of a key is the utterance; a later audio member of the same key is an error row
    (id: its member name) saying so. The reference is the ``.txt``/``.json`` member with the audio
    member's own stem (``spk1/utt.001.txt`` for ``spk1/utt.001.flac``), else the key's
    (``key.txt`` beside ``key.seg.flac``). An unreadable shard adds one ``<uri>#error`` row.
    """
    audio: list[Member] = []
    texts: dict[str, str | None] = {}
    ids: dict[str, str] = {}
    ghosts = [0]
    failure = None
    try:
        _scan_tar(f, columns, audio, texts, ids, ghosts)
    except (OSError, EOFError, tarfile.TarError) as e:
        failure = f"unreadable tar shard after {len(audio)} audio members: {type(e).__name__}: {e}"
    key_texts: dict[str, str | None] = {}
    for stem, text in texts.items():
        if text is not None:
            key_texts.setdefault(webdataset_split(stem)[0], text)
    items, first_member = [], {}
    for name, offset, size, link_error in ((m.name, m.offset, m.size, m.error) for m in audio):
        key, _ = webdataset_split(name)
        stem = strip_extension(name)
        reference = texts.get(stem)
        if key not in first_member:
            first_member[key] = name
            if reference is None:
                reference = key_texts.get(key)
            uid = ids.get(stem) or ids.get(key) or key
            items.append(range_item(uid, f"{uri}#{key}", uri, offset, size, reference))
            items[-1]["error"] = link_error
            continue
        item = range_item(name, f"{uri}#{name}", uri, offset, size, reference)
        item["error"] = (f"second audio member {name!r} of WebDataset key {key!r} (after "
                         f"{first_member[key]!r}; a key runs to the first dot of the file name): "
                         "give each utterance its own key")
        items.append(item)
    if failure:
        items.append(file_item(f"{uri}#error", uri, error=failure))
    return with_ghosts(items_table(items), ghosts[0])

