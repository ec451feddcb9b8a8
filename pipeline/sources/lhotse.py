"""lhotse manifests: recordings + supervisions, or cuts (JSONL, usually ``.jsonl.gz``) → index items.

Field names and rules are lhotse's (``lhotse/audio/recording.py``, ``lhotse/audio/source.py``,
``lhotse/supervision.py``, ``lhotse/cut/mono.py``):

* A recording: ``id``, ``sources`` (each ``{type, channels, source}``; ``type`` ``file`` is a path,
  ``url`` a URI; ``command``/``memory``/``shar`` sources are not read here and give error rows),
  ``sampling_rate``, ``num_samples``, ``duration``, optional ``transforms``. A recording with one
  source per channel picks the source holding the wanted channel.
* A supervision: ``id``, ``recording_id``, ``start`` and ``duration`` (seconds of the recording),
  ``channel`` (an int, or a list), ``text``. Each supervision is one row: that span of that
  channel of its recording, id = the supervision id. A recording without any supervision is one
  row for the whole recording (id = the recording id), so no listed audio is dropped.
* A cut (``MonoCut``; ``MultiCut`` with several channels is downmixed): ``id``, ``start``,
  ``duration``, ``channel``, ``recording`` (embedded), ``supervisions`` (their texts, in start
  order, joined by a space, are the reference). Each cut is one row; ``MixedCut``/``PaddingCut``
  rows are error rows.

lhotse itself is not imported: its loaders build one Python object per row (several times the
cost of ``json.loads`` here), and only a few fields are needed. Tests write the manifests with
lhotse to keep the two in step. Relative ``file`` paths resolve against ``--audio-root`` when
given, else the manifest's folder.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from pipeline.config import ConfigError
from pipeline.sources.conventions import (ItemColumns, absolute_base, decode_utf8, gunzip,
                                          resolve_audio, row_channel)
from pipeline.sources.formats import lhotse_role
from pipeline.sources.manifest import json_lines
from pipeline.storage import parent_uri

READ_SOURCE_TYPES = ("file", "url")
# Transforms that leave the signal as recorded (the pipeline resamples to 16 kHz anyway).
HARMLESS_TRANSFORMS = ("Resample",)


def lhotse_rows(data: bytes, uri: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line, row, why not) of a lhotse JSONL manifest (gzip or not)."""
    return json_lines(decode_utf8(gunzip(data, uri), uri, "lhotse manifest"))


def _source(recording: dict, channel: int | None, base: str) -> tuple[str, int | None]:
    """(audio URI, channel within that file or ``None``) of a recording. Raises ``ValueError``."""
    sources = recording.get("sources") or []
    if not sources:
        raise ValueError(f"recording {recording.get('id')!r} has no sources")
    if channel is None:
        if len(sources) > 1:
            raise ValueError(f"recording {recording.get('id')!r} has one source per channel; give "
                             "the supervision or cut a channel")
        chosen, inner = sources[0], None
    else:
        chosen = next((s for s in sources if channel in (s.get("channels") or [0])), None)
        if chosen is None:
            raise ValueError(f"recording {recording.get('id')!r} has no channel {channel}")
        inner = (chosen.get("channels") or [0]).index(channel)
    kind = chosen.get("type")
    if kind not in READ_SOURCE_TYPES:
        raise ValueError(f"recording {recording.get('id')!r}: audio source type {kind!r} is not "
                         f"read (only {', '.join(READ_SOURCE_TYPES)}); store the audio as files")
    transforms = [t.get("name") for t in recording.get("transforms") or [] if isinstance(t, dict)]
    changed = [t for t in transforms if t not in HARMLESS_TRANSFORMS]
    if changed:
        raise ValueError(f"recording {recording.get('id')!r} has transforms {changed}, which are "
                         "not applied here; save the transformed audio")
    path = str(chosen.get("source") or "")
    if not path:
        raise ValueError(f"recording {recording.get('id')!r} has an empty source")
    return (path if kind == "url" else resolve_audio(base, path)), inner


def _span(start, duration) -> tuple[float | None, float | None]:
    start = float(start or 0.0)
    if duration is None:
        return (start or None), None
    return start, start + float(duration)


def _add(out: ItemColumns, uid: str, recording: dict, start, duration, channel, reference,
         base: str, where: str) -> None:
    try:
        channel = row_channel(channel)
        uri, inner = _source(recording, channel, base)
        begin, end = _span(start, duration)
    except (ValueError, TypeError) as e:
        out.add(uid, where, reference, f"{where}: {e}")
        return
    out.add(uid, uri, reference, None, begin, end, channel=inner)


def lhotse_table(files: dict[str, bytes], audio_root: str | None = None) -> pa.Table:
    """Index items of one lhotse set: ``files`` maps each manifest URI (a cuts manifest, or a
    recordings manifest and optionally its supervisions) to its raw bytes.

    Raises:
        ConfigError: a manifest that is not UTF-8/gzip, or supervisions without recordings.
    """
    by_role = {lhotse_role(uri): uri for uri in files}
    out = ItemColumns()
    first = next(iter(files))
    base = (absolute_base(audio_root) if audio_root else parent_uri(first)).rstrip("/") + "/"
    if "cuts" in by_role:
        uri = by_role["cuts"]
        for line, cut, problem in lhotse_rows(files[uri], uri):
            _add_cut(out, cut, problem, f"{uri}:{line}", base)
        return out.table()
    if "recordings" not in by_role:
        raise ConfigError(f"lhotse supervisions {first} need their recordings manifest")
    rec_uri = by_role["recordings"]
    recordings: dict[str, dict] = {}
    for line, rec, problem in lhotse_rows(files[rec_uri], rec_uri):
        if rec is None or not rec.get("id"):
            out.add(f"{rec_uri}:{line}", rec_uri,
                    error=f"lhotse recording at line {line}: {problem or 'no id'}")
            continue
        recordings[str(rec["id"])] = rec
    supervised: set[str] = set()
    sup_uri = by_role.get("supervisions")
    if sup_uri:
        for line, sup, problem in lhotse_rows(files[sup_uri], sup_uri):
            where = f"{sup_uri}:{line}"
            if sup is None or not sup.get("id"):
                out.add(where, sup_uri, error=f"lhotse supervision at line {line}: "
                                              f"{problem or 'no id'}")
                continue
            rec_id = str(sup.get("recording_id"))
            text = sup.get("text")
            if rec_id not in recordings:
                out.add(str(sup["id"]), sup_uri, text, f"{where}: supervision {sup['id']!r} names "
                        f"recording {rec_id!r}, which {rec_uri.rsplit('/', 1)[-1]} does not have")
                continue
            supervised.add(rec_id)
            _add(out, str(sup["id"]), recordings[rec_id], sup.get("start"), sup.get("duration"),
                 sup.get("channel"), text, base, where)
    for rec_id, rec in recordings.items():
        if rec_id not in supervised:
            _add(out, rec_id, rec, None, None, None, None, base, rec_uri)
    return out.table()


def _add_cut(out: ItemColumns, cut: dict | None, problem: str | None, where: str, base: str) -> None:
    if cut is None or not cut.get("id"):
        out.add(where, where.rsplit(":", 1)[0], error=f"lhotse cut at {where}: {problem or 'no id'}")
        return
    uid = str(cut["id"])
    kind = cut.get("type", "MonoCut")
    supervisions = sorted((s for s in cut.get("supervisions") or [] if isinstance(s, dict)),
                          key=lambda s: s.get("start") or 0)
    texts = [s["text"] for s in supervisions if s.get("text")]
    reference = " ".join(texts) if texts else None
    if kind not in ("MonoCut", "MultiCut") or not isinstance(cut.get("recording"), dict):
        out.add(uid, where.rsplit(":", 1)[0], reference,
                f"{where}: lhotse {kind} {uid!r} is not read (only MonoCut/MultiCut with their "
                "recording); save its audio or keep the cuts unmixed")
        return
    _add(out, uid, cut["recording"], cut.get("start"), cut.get("duration"), cut.get("channel"),
         reference, base, where)
