"""The kept set, built and written by Ray Data from the transcripts (nothing per row on the driver).

Under the output root ``OUT``:

* ``scored/``: Parquet, every transcript row (no audio) plus ``draft_disagreement``, ``keep``,
  ``reject_reason`` and ``kept_audio`` (the FLAC's path under ``OUT``, null unless kept);
* ``kept_audio/<xyz>/<key>.flac``: each kept row's audio, 16 kHz mono (``kept_audio.py``);
* ``kept/`` (``hf``): Parquet in the Hugging Face datasets layout, ``audio`` = {bytes, path};
* ``kept_manifest/`` (``nemo``): NeMo JSON-lines manifests, one file per block;
* ``kept_wds/`` (``webdataset``): tar shards, ``<key>.flac`` + ``<key>.txt`` + ``<key>.json``.

Pass 1 reads ``transcripts/`` (with the audio bytes), decides each row and writes its FLAC (one
encode per kept row) and ``scored/``. Every layout is then one more read of ``scored/`` with the
FLAC bytes read back where the layout embeds them: each pass is a read, a map and a Ray writer.
"""

from __future__ import annotations

import functools
import json
import posixpath

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.cluster import LIGHT_TASK_CPUS, light_tasks
from pipeline.pseudo_label.filters import Filters, decide, draft_disagreement
from pipeline.pseudo_label.kept_audio import KEPT_AUDIO_DIR, export_flac, kept_audio_relpath, sample_key
from pipeline.retry import retry_call
from pipeline.scoring import make_normalizer
from pipeline.storage import Storage, is_remote, to_uri

SCORED_DIR, KEPT_DIR, MANIFEST_DIR, WDS_DIR = "scored", "kept", "kept_manifest", "kept_wds"
KEPT_FORMATS = ("hf", "nemo", "webdataset")
FORMAT_DIRS = {"hf": KEPT_DIR, "nemo": MANIFEST_DIR, "webdataset": WDS_DIR}
DERIVED_DIRS = (SCORED_DIR, KEPT_DIR, MANIFEST_DIR, WDS_DIR, KEPT_AUDIO_DIR)
# Exported audio whose length differs from the transcript's duration_s by more than this is not
# the audio that was labelled (a span whose bounds the transcripts do not carry): not kept.
DURATION_TOLERANCE_S = 0.02
# Rows per map call: the audio of a batch is in memory at once (40 s of FLAC is about 1 MB).
BATCH_ROWS = 128
SCORED_FIELDS = [pa.field("draft_disagreement", pa.float32()), pa.field("keep", pa.bool_()),
                 pa.field("reject_reason", pa.string()), pa.field("kept_audio", pa.string())]
AUDIO_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@functools.lru_cache(maxsize=4)
def _normalizer(name: str):
    return make_normalizer(name)


def _scored_schema(schema: pa.Schema) -> pa.Schema:
    """The transcript columns without ``audio``, then :data:`SCORED_FIELDS`."""
    added = {f.name for f in SCORED_FIELDS} | {"audio"}
    return pa.schema([f for f in schema if f.name not in added] + SCORED_FIELDS)


def _export(row: dict, audio: bytes | None) -> bytes | None:
    """FLAC bytes of a kept row's audio, or ``None`` when it cannot be the labelled audio."""
    if not audio:
        return None
    try:
        flac, seconds = export_flac(audio, row.get("start_s"), row.get("end_s"))
    except Exception:  # noqa: BLE001 - an undecodable row is not kept; the job goes on
        return None
    if abs(seconds - (row["duration_s"] or 0.0)) > DURATION_TOLERANCE_S:
        return None
    return flac


def score_and_export(batch: pa.Table, *, filters: Filters, normalizer: str, storage: Storage,
                     root: str) -> pa.Table:
    """Transcript rows (with ``audio`` bytes) → scored rows; kept rows' FLACs written under
    ``root``. A kept row whose audio does not export becomes ``audio_unavailable``."""
    normalize = _normalizer(normalizer)
    fs, root_path = storage.filesystem(root)
    schema = _scored_schema(batch.schema)
    has_audio = "audio" in batch.column_names
    audio = batch.column("audio").to_pylist() if has_audio else [None] * len(batch)
    rows, files = [], {}
    for row, data in zip((batch.drop_columns(["audio"]) if has_audio else batch).to_pylist(), audio):
        row["draft_disagreement"] = None if row["error"] else \
            draft_disagreement(row["draft_text"] or "", row["text"] or "", normalize)
        row["keep"], row["reject_reason"] = decide(row, filters, normalize, normalizer)
        row["kept_audio"] = None
        if row["keep"]:
            flac = _export(row, data)
            if flac is None:
                row["keep"], row["reject_reason"] = False, "audio_unavailable"
            else:
                row["kept_audio"] = kept_audio_relpath(row["id"])
                files[posixpath.join(root_path, row["kept_audio"])] = flac
        rows.append(row)
    if files:
        if not is_remote(root):
            for parent in {posixpath.dirname(p) for p in files}:
                fs.makedirs(parent, exist_ok=True)
        retry_call(lambda: fs.pipe(files), what=f"writing {len(files)} files under {root}/{KEPT_AUDIO_DIR}",
                   budget_s=storage.retry_seconds, redact=storage.redact)
    return pa.Table.from_pylist(rows, schema=schema)


def _kept(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.fill_null(batch.column("keep"), False))


def _read_flacs(kept: pa.Table, storage: Storage, root: str) -> list[bytes]:
    fs, root_path = storage.filesystem(root)
    paths = [posixpath.join(root_path, p) for p in kept.column("kept_audio").to_pylist()]
    if not paths:
        return []
    got = retry_call(lambda: fs.cat(paths), what=f"reading kept audio under {root}",
                     budget_s=storage.retry_seconds, redact=storage.redact)
    return [got[p] for p in paths]


def root_uri(storage: Storage, root: str) -> str:
    """``root`` as an absolute path (local) or a full URI (object stores)."""
    fs, path = storage.filesystem(root)
    return to_uri(fs, path)


def hf_rows(batch: pa.Table, *, storage: Storage, root: str) -> pa.Table:
    """Kept rows in the Hugging Face datasets layout: ``audio`` {bytes: FLAC, path: its URI}."""
    kept = _kept(batch)
    base = root_uri(storage, root)
    audio = pa.array([{"bytes": b, "path": posixpath.join(base, p)} for b, p in
                      zip(_read_flacs(kept, storage, root), kept.column("kept_audio").to_pylist())],
                     AUDIO_STRUCT)
    return pa.table({
        "id": kept.column("id"), "audio": audio, "text": kept.column("text"),
        "duration": kept.column("duration_s"), "confidence": kept.column("confidence"),
        "draft_disagreement": kept.column("draft_disagreement"),
        "token_ids": kept.column("token_ids"), "draft_text": kept.column("draft_text"),
        "source": kept.column("source"), "model": kept.column("model"),
    })


def manifest_rows(batch: pa.Table, *, base_uri: str) -> pa.Table:
    """Kept rows as NeMo manifest lines: ``audio_filepath`` (the exported FLAC), ``duration``
    (seconds), ``text``, plus ``id``, ``source`` and ``confidence``."""
    kept = _kept(batch)
    paths = [posixpath.join(base_uri, p) for p in kept.column("kept_audio").to_pylist()]
    return pa.table({
        "audio_filepath": pa.array(paths, pa.string()), "duration": kept.column("duration_s"),
        "text": kept.column("text"), "id": kept.column("id"), "source": kept.column("source"),
        "confidence": kept.column("confidence"),
    })


def webdataset_rows(batch: pa.Table, *, storage: Storage, root: str) -> pa.Table:
    """Kept rows as WebDataset samples: ``__key__`` (:func:`sample_key` of the id), ``flac``,
    ``txt`` and ``json`` (``id``, ``text``, ``duration``, ``confidence``, ``token_ids``,
    ``source``; the id is authoritative, the key only names the files)."""
    kept = _kept(batch)
    rows = kept.select(["id", "text", "duration_s", "confidence", "token_ids", "source"]).to_pylist()
    meta = [json.dumps({"id": r["id"], "text": r["text"], "duration": r["duration_s"],
                        "confidence": r["confidence"], "token_ids": r["token_ids"],
                        "source": r["source"]}, ensure_ascii=False) for r in rows]
    return pa.table({
        "__key__": pa.array([sample_key(r["id"]) for r in rows], pa.string()),
        "flac": pa.array(_read_flacs(kept, storage, root), pa.binary()),
        "txt": pa.array([r["text"] for r in rows], pa.string()),
        "json": pa.array(meta, pa.string()),
    })


def clear_derived(storage: Storage, root: str) -> None:
    """Remove what an earlier run derived from the transcripts (the kept set is rebuilt whole)."""
    fs, root_path = storage.filesystem(root)
    for name in DERIVED_DIRS:
        path = posixpath.join(root_path, name)
        fs.invalidate_cache(path)
        if retry_call(lambda p=path: fs.exists(p), what=f"checking {root}/{name}",
                      budget_s=storage.retry_seconds, redact=storage.redact):
            retry_call(lambda p=path: fs.rm(p, recursive=True), what=f"removing {root}/{name}",
                       budget_s=storage.retry_seconds, redact=storage.redact)


def has_derived(storage: Storage, root: str) -> list[str]:
    """The derived folders that exist under ``root``."""
    fs, root_path = storage.filesystem(root)
    found = []
    for name in DERIVED_DIRS:
        path = posixpath.join(root_path, name)
        fs.invalidate_cache(path)
        if fs.exists(path):
            found.append(name)
    return found


def _write(dataset, kind: str, storage: Storage, uri: str) -> None:
    arrow_fs, path = storage.arrow_filesystem(uri)
    remote = {"ray_remote_args": {"num_cpus": LIGHT_TASK_CPUS}, "concurrency": light_tasks().size}
    if kind == "parquet":
        dataset.write_parquet(path, filesystem=arrow_fs, **remote)
    elif kind == "json":
        dataset.write_json(path, filesystem=arrow_fs, force_ascii=False, **remote)
    else:
        dataset.write_webdataset(path, filesystem=arrow_fs, encoder=None, **remote)


def build_kept_set(storage: Storage, root: str, filters: Filters, normalizer: str,
                   formats: tuple[str, ...]) -> None:
    """Score ``root/transcripts`` and write ``scored/``, ``kept_audio/`` and each of ``formats``."""
    import ray.data

    arrow_fs, root_path = storage.arrow_filesystem(root)
    transcripts = ray.data.read_parquet(posixpath.join(root_path, "transcripts"), filesystem=arrow_fs)
    scored = transcripts.map_batches(
        score_and_export, batch_format="pyarrow", batch_size=BATCH_ROWS, num_cpus=1,
        fn_kwargs={"filters": filters, "normalizer": normalizer, "storage": storage, "root": root})
    _write(scored, "parquet", storage, posixpath.join(root, SCORED_DIR))

    def read_scored():
        return ray.data.read_parquet(posixpath.join(root_path, SCORED_DIR), filesystem=arrow_fs)

    if "hf" in formats:
        _write(read_scored().map_batches(hf_rows, batch_format="pyarrow", batch_size=BATCH_ROWS,
                                         fn_kwargs={"storage": storage, "root": root}),
               "parquet", storage, posixpath.join(root, KEPT_DIR))
    if "nemo" in formats:
        _write(read_scored().map_batches(manifest_rows, batch_format="pyarrow",
                                         fn_kwargs={"base_uri": root_uri(storage, root)}),
               "json", storage, posixpath.join(root, MANIFEST_DIR))
    if "webdataset" in formats:
        _write(read_scored().map_batches(webdataset_rows, batch_format="pyarrow", batch_size=BATCH_ROWS,
                                         fn_kwargs={"storage": storage, "root": root}),
               "webdataset", storage, posixpath.join(root, WDS_DIR))
