"""NeMo tarred datasets: ``tarred_audio_manifest.json`` + ``audio_0.tar`` ... → index items.

The layout and its rules are NeMo's (``scripts/speech_recognition/convert_to_tarred_audio_dataset.py``
writes it, ``nemo/collections/asr/data/audio_to_text.py`` reads it):

* The manifest is a NeMo manifest (JSON lines, possibly ``.gz``) whose ``audio_filepath`` is the
  name of a member of a tar, with ``shard_id`` naming the tar (``audio_<shard_id>.tar``), and the
  usual ``text``, ``offset``, ``duration``.
* A file listed more than once within a shard (several segments of one recording) is stored once;
  its later rows name ``<stem>-sub<N><ext>``, which is not a member: NeMo finds every row of a
  member by the member's file id (``os.path.splitext(os.path.basename(name))[0]``), so a
  ``-sub<N>`` row reads the member ``<stem><ext>`` with its own offset and duration.
* Rows are independent utterances; each becomes exactly one output row. Ids: the ``id`` column,
  else the row's ``audio_filepath`` without extension (``x``, ``x-sub1``) plus ``@<start>-<end>``
  for a span, as for any manifest.

A set's tars are split among index tasks (``IndexUnit.part``); each task reads the manifest and
the member headers of its own tars, and gives the rows whose ``shard_id`` names one of them. The
first task also gives the rows whose ``shard_id`` names no tar of the set (error rows) and the
rows without a ``shard_id`` (looked up by file id in every tar).
"""

from __future__ import annotations

import posixpath
import re
import tarfile
import unicodedata
from typing import Callable

import pyarrow as pa

from pipeline.config import SourceColumns
from pipeline.sources.conventions import (ItemColumns, channel_suffix, decode_utf8, gunzip,
                                          row_channel, span_suffix)
from pipeline.sources.ids import base_prefix, strip_extension
from pipeline.sources.items import with_ghosts
from pipeline.sources.manifest import _plan, _span, _value, parse_manifest, row_start
from pipeline.sources.shards import Member, tar_members

SHARD_ID_COLUMN = "shard_id"
SUB_SUFFIX = re.compile(r"-sub\d+$")
SHARD_NUMBER = re.compile(r"_(\d+)\.tar$")


class UnreadableTar(Exception):
    """A tar of the set cannot be opened; its rows become error rows saying so."""


def file_id(name: str) -> str:
    """NeMo's key of a member or manifest path: the basename without extension, with a
    ``-sub<N>`` suffix (a repeated member) taken off, in Unicode NFC (a tar written on macOS
    spells names decomposed)."""
    stem = posixpath.splitext(posixpath.basename(name))[0]
    return unicodedata.normalize("NFC", SUB_SUFFIX.sub("", stem))


def shard_number(tar_uri: str) -> str | None:
    """``.../audio_12.tar`` → ``12`` (NeMo names shard N ``audio_N.tar``)."""
    match = SHARD_NUMBER.search(tar_uri)
    return str(int(match.group(1))) if match else None


def owned_tars(tars: tuple[str, ...], part: tuple[int, int]) -> list[str]:
    """The tars part ``part[0]`` of ``part[1]`` owns (contiguous runs, in listing order)."""
    index, parts = part
    size = -(-len(tars) // parts) if tars else 0
    return list(tars[index * size:(index + 1) * size])


def scan_members(f) -> tuple[dict[str, Member], int]:
    """Members of one tar by NeMo file id (the first of an id wins), and the macOS metadata
    members skipped."""
    ghosts = [0]
    members: dict[str, Member] = {}
    with tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar_members(tar, ghosts):
            members.setdefault(file_id(member.name), member)
    return members, ghosts[0]


def nemo_tarred_table(manifest: bytes, manifest_uri: str, tars: tuple[str, ...],
                      part: tuple[int, int], open_tar: Callable[[str], dict[str, Member]],
                      columns: SourceColumns, id_prefix: str = "") -> pa.Table:
    """Index items of the rows of a tarred manifest that part ``part`` of the set gives.

    ``manifest``: the manifest's raw bytes; ``tars``: every tar of the set (URIs);
    ``open_tar(uri)``: the members of one tar by file id (:func:`scan_members`), called once per
    tar this part needs (:class:`UnreadableTar`: that tar's rows are error rows saying why). A row
    whose member is in no tar (or not in its shard's tar) is an error row naming the member and
    where it was looked for. A tar of this part that no row can reach (every row names a shard,
    none this one's) is one error row, id ``<id_prefix><tar name>``: its members are never read
    without a row. ``id_prefix`` starts every derived id (several inputs: the manifest's folder
    under their common folder, ``a/``).

    Raises:
        ConfigError: the manifest is not UTF-8/gzip, or has no audio column.
    """
    text = decode_utf8(gunzip(manifest, manifest_uri), manifest_uri)
    kind_uri = manifest_uri[:-3] if manifest_uri.lower().endswith(".gz") else manifest_uri
    header, rows = parse_manifest(text, kind_uri)
    names = set(header or ())
    for _, row, _ in rows:
        if row is not None:
            names.update(row)
    out = ItemColumns()
    if not rows:
        return out.table()
    plan = _plan(names, manifest_uri, columns, None)
    by_shard = {shard_number(t): t for t in tars}
    mine = set(owned_tars(tars, part))
    first = part[0] == 0
    cache: dict[str, dict[str, Member]] = {}
    ghosts = 0

    unreadable: dict[str, str] = {}

    def members(tar: str) -> dict[str, Member]:
        nonlocal ghosts
        if tar not in cache:
            try:
                cache[tar], skipped = open_tar(tar)
            except UnreadableTar as e:
                cache[tar], skipped, unreadable[tar] = {}, 0, str(e)
            ghosts += skipped
        return cache[tar]

    reached, searched_all = set(), False
    for number, (line, row, problem) in enumerate(rows, 1):
        shard = _value(row, SHARD_ID_COLUMN) if row is not None else None
        tar = by_shard.get(str(int(float(shard))) if shard and _is_number(shard) else shard)
        reached.add(tar)
        searched_all |= row is not None and shard is None   # a row without shard_id: any tar
        if (tar in mine) if tar is not None else first:
            _add_row(out, plan, number, line, row, problem, shard, tar, tars, members, unreadable,
                     id_prefix)
    if not searched_all:
        for tar in sorted(mine - reached):
            name, number = posixpath.basename(tar), shard_number(tar)
            which = f"shard {number}" if number else "it is not named audio_<shard_id>.tar"
            out.add(id_prefix + name, tar, None, f"tar shard {name} is in the set of "
                    f"{posixpath.basename(manifest_uri)}, but no manifest row names it ({which}): "
                    "its members are not read")
    return with_ghosts(out.table(), ghosts)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _add_row(out: ItemColumns, plan, number: int, line: int, row: dict | None, problem: str | None,
             shard: str | None, tar: str | None, tars: tuple[str, ...], members,
             problems: dict[str, str], id_prefix: str = "") -> None:
    started = row_start(out, plan, line, number, row, problem)
    if started is None:
        return
    uid, reference, fallback_id = started
    name = _value(row, plan.audio)
    if name is None:
        out.add(uid or fallback_id, plan.uri, reference, f"manifest row {number} has no {plan.audio!r}")
        return
    try:
        start, end = _span(row, plan)
        channel = row_channel(row.get("channel"))
    except ValueError as e:
        out.add(uid or fallback_id, plan.uri, reference, f"manifest row {number}: {e}")
        return
    if uid is None:
        uid = id_prefix + strip_extension(name.replace("\\", "/")) \
            + ("" if start is None else span_suffix(start, end)) \
            + ("" if channel is None else channel_suffix(channel))
    key = file_id(name.replace("\\", "/"))
    if shard is not None and tar is None:
        out.add(uid, plan.uri, reference, f"manifest row {number}: shard_id {shard} names no tar of "
                f"the set (looked for audio_{shard}.tar among the set's {len(tars)} tars)")
        return
    where = [tar] if tar is not None else list(tars)
    member = next((members(t)[key] for t in where if key in members(t)), None)
    broken = [problems[t] for t in where if t in problems]
    if member is None and broken:
        out.add(uid, plan.uri, reference, f"manifest row {number}: {broken[0]}")
        return
    if member is None:
        looked = posixpath.basename(tar) if tar else f"any of the {len(tars)} tars"
        out.add(uid, plan.uri, reference, f"manifest row {number}: member {key!r} (from "
                f"{name!r}) is not in {looked}")
        return
    found_in = tar or next(t for t in where if key in members(t))
    out.add(uid, found_in, reference, member.error, start, end,
            source=f"{found_in}#{member.name}", offset=member.offset, length=member.size,
            channel=channel)


def tarred_unit_table(unit, read_bytes: Callable[[str], bytes], open_file, columns: SourceColumns
                      ) -> pa.Table:
    """The items of one ``nemo-tarred`` index unit (``unit.uris``: manifest, then the tars)."""
    manifest, tars = unit.uris[0], tuple(unit.uris[1:])

    def open_tar(uri: str):
        try:
            with open_file(uri) as f:
                return scan_members(f)
        except (OSError, EOFError, tarfile.TarError) as e:
            raise UnreadableTar(f"tar shard {posixpath.basename(uri)} cannot be read "
                                f"({type(e).__name__}: {e})") from e

    return nemo_tarred_table(read_bytes(manifest), manifest, tars, unit.part, open_tar, columns,
                             base_prefix(unit.id_base, posixpath.dirname(manifest)))
