"""Evaluation the Open ASR Leaderboard's way: transcribe each dataset to ``OUT/<name>/``, score it
from its Parquet, and write ``report.json``, ``report.md`` and ``report.png`` at ``OUT/``.

Per dataset: rows whose reference normalises to nothing scorable are left out before inference
(``TranscribeConfig.reference_filter``; chunked sets are filtered by their parent's reference
here); the silence gate is off (every kept row goes through the model, as on the leaderboard);
chunks of chunked sets are transcribed as they are (never re-segmented) and joined per parent.
Each set is transcribed in its ``language`` (the score stage's per-row counts then follow the same
rules as the report); long-form sets take :data:`LONGFORM_MAX_DURATION_SECONDS` as their longest
input unless ``--max-duration-seconds`` says otherwise. The figures are defined in
:mod:`pipeline.evaluation.metrics`, the track blocks in :mod:`pipeline.evaluation.tracks`.
"""

from __future__ import annotations

import json
import math
import posixpath
import time
from dataclasses import dataclass, replace

from pipeline.config import ConfigError, SourceColumns, TranscribeConfig
from pipeline.evaluation.specs import (
    DatasetSpec, chunk_rows, parent_references, pick_text_column, table_columns,
)
from pipeline.evaluation.metrics import from_rows, join_chunks, mean_wer_percent, score_units
from pipeline.retry import StorageUnavailable
from pipeline.evaluation.tracks import summarize_tracks, track_of
from pipeline.text import is_english, is_scorable_reference
from pipeline.sinks.output import read_columns
from pipeline.storage import Storage

RESULT_COLUMNS = ["id", "text", "reference", "duration_s", "error", "features_seconds", "infer_seconds",
                  "segments"]
INPUTS_DIR = "_inputs"          # chunk manifests the evaluation writes for chunked sets
NO_SILENCE_GATE = float("-inf")
UNSEGMENTED_SECONDS = 1e9       # chunks are transcribed whole
# The long-form track's longest input: earnings calls run past an hour; 4 h leaves room.
LONGFORM_MAX_DURATION_SECONDS = 4 * 3600.0


def reference_filter(spec: DatasetSpec, normalizer: str) -> str:
    """The normaliser a set's references are tested with before inference: its own for English
    sets, ``none`` (the raw text) for the others, as the leaderboard's multilingual runner does."""
    return normalizer if is_english(spec.language) else "none"


def dataset_config(base: TranscribeConfig, spec: DatasetSpec, max_duration_seconds: float | None) -> TranscribeConfig:
    """``base`` for one set: its language, and its longest input: ``max_duration_seconds`` when
    given, else ``base``'s, raised to :data:`LONGFORM_MAX_DURATION_SECONDS` for long-form sets."""
    longest = max_duration_seconds or (max(base.max_duration_seconds, LONGFORM_MAX_DURATION_SECONDS)
                                       if spec.track == "longform" else base.max_duration_seconds)
    return replace(base, language=spec.language, max_duration_seconds=longest)


@dataclass(frozen=True)
class Plan:
    """How one dataset is transcribed: its config, and for chunked sets the chunk → parent map."""

    config: TranscribeConfig
    chunks: list[dict] | None = None
    references: dict[str, str] | None = None
    dropped_parents: int = 0


def _input_error(spec: DatasetSpec, message: str) -> str:
    """A transcribe message re-worded for evaluate: about the dataset's uri, not ``--input``."""
    message = message.replace("--input ", "").replace("--input", "its uri")
    for flag, key in (("--audio-column", "audio_column"), ("--text-column", "text_column"),
                      ("--id-column", "id_column")):   # transcribe's flags are keys of the set here
        message = message.replace(flag, f"{key} in the --datasets file")
    return f"dataset {spec.name}: " + message


def plan_plain(base: TranscribeConfig, spec: DatasetSpec, output: str, storage: Storage) -> Plan:
    """A dataset read as transcribe reads it; the reference is the first of the leaderboard's
    text columns it has (or ``spec.text_column``)."""
    try:
        columns = table_columns(storage, spec.uri, spec.format)
    except (OSError, ValueError) as e:
        raise ConfigError(_input_error(spec, f"{spec.uri} cannot be read ({e}); check the uri in "
                                             "--dataset/--datasets")) from e
    text = pick_text_column(columns, spec.text_column, f"dataset {spec.name}: {spec.uri}") if columns \
        else (spec.text_column or "text")
    cols = SourceColumns(audio=spec.audio_column, text=text, id=spec.id_column)
    return Plan(replace(base, inputs=(spec.uri,), output=output, format=spec.format, columns=cols,
                        silence_dbfs=NO_SILENCE_GATE, reference_filter=reference_filter(spec, base.normalizer)))


def plan_chunked(base: TranscribeConfig, spec: DatasetSpec, output: str, storage: Storage,
                 inputs_root: str) -> Plan:
    """A chunked set: a JSONL manifest of its chunks (id = the chunk's file name, and no reference:
    a chunk is only scored as part of its parent, so its row carries no per-chunk WER) written under
    ``OUT/_inputs/``; chunks of parents whose reference is not scorable are left out here."""
    chunks = chunk_rows(storage, spec)
    references = parent_references(storage, spec)
    keep = {p for p in {c["parent"] for c in chunks}
            if is_scorable_reference(references.get(p), base.normalizer, spec.language)}
    dropped = len({c["parent"] for c in chunks}) - len(keep)
    kept = [c for c in chunks if c["parent"] in keep]
    if not kept:
        raise ConfigError(f"dataset {spec.name}: no parent in {spec.parents_uri} has a scorable "
                          f"reference for the chunks in {spec.uri} (check parent_id against the parents' id)")
    manifest = posixpath.join(inputs_root, f"{spec.name}.jsonl")
    lines = "".join(json.dumps({"id": c["file"], "audio_filepath": c["audio"]}) + "\n"
                    for c in kept)
    fs, path = storage.filesystem(manifest)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as f:
        f.write(lines.encode())
    cols = SourceColumns(audio="audio_filepath", text="text", id="id")
    config = replace(base, inputs=(manifest,), output=output, format="manifest", columns=cols,
                     silence_dbfs=NO_SILENCE_GATE, max_segment_seconds=UNSEGMENTED_SECONDS,
                     max_duration_seconds=max(base.max_duration_seconds, UNSEGMENTED_SECONDS),
                     reference_filter=None)
    return Plan(config, chunks=kept, references=references, dropped_parents=dropped)


def evaluate_dataset(spec: DatasetSpec, base: TranscribeConfig, output: str, storage: Storage,
                     model, echo=print, max_duration_seconds: float | None = None) -> dict:
    """Transcribe and score one dataset; its entry of ``report.json``."""
    from pipeline.run import run_transcribe

    base = dataset_config(base, spec, max_duration_seconds)
    out = posixpath.join(output.rstrip("/"), spec.name)
    if spec.chunked:
        plan = plan_chunked(base, spec, out, storage, posixpath.join(output.rstrip("/"), INPUTS_DIR))
    else:
        plan = plan_plain(base, spec, out, storage)
    started = time.monotonic()
    try:
        summary = run_transcribe(plan.config, model, echo=echo)
    except ConfigError as e:
        raise ConfigError(_input_error(spec, str(e))) from e
    wall = time.monotonic() - started
    rows = read_columns(storage, out, RESULT_COLUMNS).to_pylist()
    extra = {}
    if plan.chunks is not None:
        units, failed_chunks = join_chunks(rows, plan.chunks, plan.references)
        extra = {"chunks": len(rows), "failed_chunks": failed_chunks}
    else:
        units = from_rows(rows)
    score = score_units(units, base.normalizer, spec.language)
    score["dropped_unscorable"] += int(summary.get("dropped_unscorable") or 0) + plan.dropped_parents
    score.update(extra, uri=spec.uri, wall_seconds=round(wall, 3),
                 rtfx_job=round(score["audio_seconds"] / wall, 2) if wall > 0 else None,
                 hub=spec.hub, config=spec.config, split=spec.split, **set_labels(spec, base.normalizer))
    if score["succeeded"] == 0:
        score["error"] = (f"no successful row ({score['failed']} failed, "
                          f"{score['dropped_unscorable']} dropped as unscorable)")
    return score


def set_labels(spec: DatasetSpec, normalizer: str) -> dict:
    """``track``, ``language``, ``normalizer`` (with its language: ``leaderboard:de``) and ``group``
    of a set's ``report.json`` entry."""
    label = normalizer if normalizer != "leaderboard" or is_english(spec.language) \
        else f"{normalizer}:{spec.language}"
    return {"track": track_of(spec), "language": spec.language, "normalizer": label, "group": spec.group}


def run_evaluate(specs: list[DatasetSpec], base: TranscribeConfig, output: str, *, model=None,
                 echo=print, max_duration_seconds: float | None = None) -> dict:
    """Evaluate every dataset, then write the reports; returns ``report.json``'s content.

    A dataset that cannot be read or has no successful row gets an ``error`` entry and the others
    go on; ``report["failed_datasets"]`` names them (the job then exits non-zero).
    """
    from pipeline.evaluation.report import write_reports
    from pipeline.model_ref import resolve_model
    from pipeline.numerics import resolve_numerics

    storage = Storage.from_env(base.s3_endpoint)
    spec_model = model or resolve_model(base.model, base.revision, base.device, base.dtype)
    # The profile every set runs under, resolved once (the checkpoint's own unless --numerics), so
    # that the report names it rather than "the checkpoint's own".
    spec_model = resolve_numerics(spec_model, base.numerics)
    started = time.monotonic()
    datasets: dict[str, dict] = {}
    for spec in specs:
        echo(f"── dataset {spec.name}: {spec.uri}")
        try:
            datasets[spec.name] = evaluate_dataset(spec, base, output, storage, spec_model, echo,
                                                   max_duration_seconds)
        except (ConfigError, StorageUnavailable) as e:
            message = str(e).strip().splitlines()[0]
            datasets[spec.name] = {"uri": spec.uri, "error": message.removeprefix(f"dataset {spec.name}: "),
                                   "wer": None, "wer_percent": None, **set_labels(spec, base.normalizer)}
        if datasets[spec.name].get("error"):
            echo(f"dataset {spec.name} failed: {datasets[spec.name]['error']}")
    report = summarize(datasets, time.monotonic() - started, base, spec_model)
    write_reports(storage, output, report)
    return report


def summarize(datasets: dict[str, dict], wall: float, base: TranscribeConfig, model) -> dict:
    """``report.json``: the datasets plus the leaderboard's mean WER and the job's RTFx figures."""
    scored = [d for d in datasets.values() if d.get("wer_percent") is not None]
    mean = mean_wer_percent([d["wer_percent"] for d in scored])
    audio = sum(d.get("audio_seconds") or 0.0 for d in datasets.values())
    timed = [d for d in datasets.values() if d.get("rtfx") is not None]
    model_seconds = sum(d["model_seconds"] for d in timed)
    timed_audio = sum(d["audio_seconds"] for d in timed)
    settings = {k: (str(v) if isinstance(v, float) and math.isinf(v) else v)
                for k, v in base.settings().items()}
    numerics = getattr(model, "numerics", None) or base.numerics
    settings["numerics"] = numerics
    return {
        "datasets": datasets,
        "mean_wer_percent": mean,
        "mean_wer": None if mean is None else mean / 100,
        "audio_seconds": audio, "model_seconds": model_seconds, "wall_seconds": round(wall, 3),
        "rtfx": round(timed_audio / model_seconds, 2) if model_seconds > 0 else None,
        "rtfx_job": round(audio / wall, 2) if wall > 0 else None,
        "failed_datasets": [name for name, d in datasets.items() if d.get("error")],
        "tracks": summarize_tracks(datasets),
        "normalizer": base.normalizer, "model": model.name_or_path,
        "revision": model.revision or base.revision, "numerics": numerics,
        "settings": settings,
    }
