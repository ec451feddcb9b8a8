"""The kept set, built and written by Ray Data from the transcripts (nothing per row on the driver).

Under the output root ``OUT``:

* ``scored/``: Parquet, every transcript row (no audio) plus the quality columns
  (:data:`~pipeline.pseudo_label.quality.QUALITY_FIELDS`: ``draft_disagreement``, ``language``,
  ``language_confidence``, loop and rate features), ``keep``, ``reject_reason`` and ``kept_audio``
  (the FLAC's path under ``OUT``, null unless kept);
* ``kept_audio/<xyz>/<key>.flac``: each kept row's audio, 16 kHz mono (``kept_audio.py``);
* ``kept/`` (``hf``): Parquet in the Hugging Face datasets layout, ``audio`` = {bytes, path};
* ``kept_manifest/`` (``nemo``): NeMo JSON-lines manifests, one file per block;
* ``kept_wds/`` (``webdataset``): tar shards, ``<key>.flac`` + ``<key>.txt`` + ``<key>.json``.

Pass 1 reads ``transcripts/`` (with the audio bytes), decides each row and writes its FLAC (one
encode per kept row) and ``scored/``. Every layout is then one more read of ``scored/`` with the
FLAC bytes read back where the layout embeds them: each pass is a read, a map and a Ray writer.

With ``--drop-lowest-confidence`` pass 1 writes ``_scored_pass1/`` instead; the per-language
thresholds are computed over it (:mod:`pipeline.pseudo_label.quantile`, two passes of counts), and
one more map writes ``scored/`` with the cut applied (a cut row's FLAC is removed), then
``_scored_pass1/`` is removed.
"""

from __future__ import annotations

import json
import posixpath

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.cluster import LIGHT_TASK_CPUS, light_tasks, read_parquet_by_tasks
from pipeline.config import ConfigError
from pipeline.pseudo_label.filters import Filters, decide
from pipeline.pseudo_label.kept_audio import KEPT_AUDIO_DIR, export_flac, kept_audio_relpath, sample_key
from pipeline.pseudo_label.quality import DECISION_FIELDS, QUALITY_FIELDS, cached_normalizer, quality_values
from pipeline.retry import retry_call
from pipeline.storage import Storage, is_remote, to_uri

SCORED_DIR, KEPT_DIR, MANIFEST_DIR, WDS_DIR = "scored", "kept", "kept_manifest", "kept_wds"
KEPT_FORMATS = ("hf", "nemo", "webdataset")
FORMAT_DIRS = {"hf": KEPT_DIR, "nemo": MANIFEST_DIR, "webdataset": WDS_DIR}
STAGE_DIR = "_scored_pass1"     # scored rows before the per-language confidence cut
DERIVED_DIRS = (SCORED_DIR, KEPT_DIR, MANIFEST_DIR, WDS_DIR, KEPT_AUDIO_DIR, STAGE_DIR)
# Exported audio whose length differs from the transcript's duration_s by more than this is not
# the audio that was labelled (a span whose bounds the transcripts do not carry): not kept.
DURATION_TOLERANCE_S = 0.02
# Rows per map call: the audio of a batch is in memory at once (40 s of FLAC is about 1 MB).
BATCH_ROWS = 128
SCORED_FIELDS = QUALITY_FIELDS + DECISION_FIELDS + [pa.field("kept_audio", pa.string())]
AUDIO_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# Word times of the kept audio: the transcripts' `words` (file time) shifted to the exported clip.
WORDS_TYPE = pa.list_(pa.struct([("word", pa.string()), ("start_s", pa.float64()),
                                 ("end_s", pa.float64()), ("confidence", pa.float32())]))
# The same in a NeMo manifest: NeMo's word timestamps are {word, start, end} in seconds.
NEMO_WORDS_TYPE = pa.list_(pa.struct([("word", pa.string()), ("start", pa.float64()),
                                      ("end", pa.float64()), ("confidence", pa.float32())]))

_normalizer = cached_normalizer


def clip_words(words: list[dict] | None, start_s: float | None) -> list[dict] | None:
    """Word times in seconds of the kept clip: file time minus the span's ``start_s`` (``None``:
    the clip starts the file)."""
    if words is None:
        return None
    shift = start_s or 0.0
    return [{"word": w["word"], "start_s": None if w["start_s"] is None else w["start_s"] - shift,
             "end_s": None if w["end_s"] is None else w["end_s"] - shift,
             "confidence": w["confidence"]} for w in words]


def _kept_words(kept: pa.Table) -> list | None:
    if "words" not in kept.column_names:
        return None
    starts = kept.column("start_s").to_pylist() if "start_s" in kept.column_names else [None] * len(kept)
    return [clip_words(w, s) for w, s in zip(kept.column("words").to_pylist(), starts)]


def _scored_schema(schema: pa.Schema) -> pa.Schema:
    """The transcript columns without ``audio``, then :data:`SCORED_FIELDS`."""
    added = {f.name for f in SCORED_FIELDS} | {"audio"}
    return pa.schema([f for f in schema if f.name not in added] + SCORED_FIELDS)


def _export(row: dict, audio: bytes | None) -> bytes | None:
    """FLAC bytes of a kept row's audio, or ``None`` when it cannot be the labelled audio."""
    if not audio:
        return None
    try:
        flac, seconds = export_flac(audio, row.get("start_s"), row.get("end_s"),
                                    row.get("channel"))
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
        row.update(quality_values(row, normalize))
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
    columns = {
        "id": kept.column("id"), "audio": audio, "text": kept.column("text"),
        "duration": kept.column("duration_s"), "confidence": kept.column("confidence"),
        "draft_disagreement": kept.column("draft_disagreement"),
        "token_ids": kept.column("token_ids"), "draft_text": kept.column("draft_text"),
        "source": kept.column("source"), "model": kept.column("model"),
        "language": kept.column("language"), "language_confidence": kept.column("language_confidence"),
    }
    words = _kept_words(kept)
    if words is not None:
        columns["words"] = pa.array(words, WORDS_TYPE)
    return pa.table(columns)


def manifest_rows(batch: pa.Table, *, base_uri: str) -> pa.Table:
    """Kept rows as NeMo manifest lines: ``audio_filepath`` (the exported FLAC), ``duration``
    (seconds), ``text``, ``lang`` (the detected language, the field NeMo's multilingual
    tokenizers read), plus ``id``, ``source``, ``confidence`` and, when the rows carry word times,
    ``words`` = [{``word``, ``start``, ``end``, ``confidence``}] in seconds of the FLAC (NeMo's
    word-timestamp names)."""
    kept = _kept(batch)
    paths = [posixpath.join(base_uri, p) for p in kept.column("kept_audio").to_pylist()]
    columns = {
        "audio_filepath": pa.array(paths, pa.string()), "duration": kept.column("duration_s"),
        "text": kept.column("text"), "lang": kept.column("language"), "id": kept.column("id"),
        "source": kept.column("source"), "confidence": kept.column("confidence"),
    }
    words = _kept_words(kept)
    if words is not None:
        columns["words"] = pa.array(
            [None if ws is None else [{"word": w["word"], "start": w["start_s"], "end": w["end_s"],
                                       "confidence": w["confidence"]} for w in ws] for ws in words],
            NEMO_WORDS_TYPE)
    return pa.table(columns)


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


def apply_confidence_cut(batch: pa.Table, *, thresholds: dict[str, float], storage: Storage,
                         root: str) -> pa.Table:
    """Scored rows with the per-language cut applied: a kept row whose ``confidence`` is below its
    language's threshold becomes ``lowest_confidence`` and its exported FLAC is removed."""
    fs, root_path = storage.filesystem(root)
    rows, gone = batch.to_pylist(), []
    for row in rows:
        cut = thresholds.get(row["language"]) if row["keep"] else None
        if cut is not None and float(row["confidence"]) < cut:
            gone.append(posixpath.join(root_path, row["kept_audio"]))
            row["keep"], row["reject_reason"], row["kept_audio"] = False, "lowest_confidence", None
    if gone:
        retry_call(lambda: fs.rm(gone), what=f"removing {len(gone)} files under {root}/{KEPT_AUDIO_DIR}",
                   budget_s=storage.retry_seconds, redact=storage.redact)
    return pa.Table.from_pylist(rows, schema=batch.schema)


def _remove(storage: Storage, uri: str) -> None:
    fs, path = storage.filesystem(uri)
    fs.invalidate_cache(path)
    if fs.exists(path):
        retry_call(lambda: fs.rm(path, recursive=True), what=f"removing {uri}",
                   budget_s=storage.retry_seconds, redact=storage.redact)


def build_kept_set(storage: Storage, root: str, filters: Filters, normalizer: str,
                   formats: tuple[str, ...]) -> dict[str, float] | None:
    """Score ``root/transcripts`` and write ``scored/``, ``kept_audio/`` and each of ``formats``.
    Returns the per-language confidence thresholds of ``--drop-lowest-confidence`` (else ``None``).

    Raises :class:`ConfigError` when ``filters.expected_language_column`` is not a transcript column.
    """
    from pipeline.pseudo_label.quantile import confidence_thresholds

    arrow_fs, root_path = storage.arrow_filesystem(root)
    transcripts = read_parquet_by_tasks(posixpath.join(root_path, "transcripts"), filesystem=arrow_fs)
    column = filters.expected_language_column
    if column is not None and column not in transcripts.schema().names:
        raise ConfigError(f"--expected-language-column {column}: the transcripts have no such column "
                          f"(they carry {', '.join(transcripts.schema().names)}; other manifest "
                          "columns are not carried); pass --expected-language CODE for the run")
    cut = filters.drop_lowest_confidence is not None
    scored = transcripts.map_batches(
        score_and_export, batch_format="pyarrow", batch_size=BATCH_ROWS, num_cpus=1,
        fn_kwargs={"filters": filters, "normalizer": normalizer, "storage": storage, "root": root})
    _write(scored, "parquet", storage, posixpath.join(root, STAGE_DIR if cut else SCORED_DIR))
    thresholds = None
    if cut:
        staged = read_parquet_by_tasks(posixpath.join(root_path, STAGE_DIR), filesystem=arrow_fs)
        thresholds = confidence_thresholds(staged, filters.drop_lowest_confidence)
        _write(staged.map_batches(apply_confidence_cut, batch_format="pyarrow", batch_size=BATCH_ROWS,
                                  fn_kwargs={"thresholds": thresholds, "storage": storage, "root": root}),
               "parquet", storage, posixpath.join(root, SCORED_DIR))
        _remove(storage, posixpath.join(root, STAGE_DIR))

    def read_scored():
        return read_parquet_by_tasks(posixpath.join(root_path, SCORED_DIR), filesystem=arrow_fs)

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
    return thresholds
