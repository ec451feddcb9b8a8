"""Open-ASR-Leaderboard-style evaluation: transcribe each dataset, then score it from its Parquet.

Scoring follows the leaderboard: hypotheses and references are normalised (Whisper's English
normaliser by default), pairs whose reference normalises to empty are left out (and counted), WER is
corpus-level per dataset (sum of word errors / sum of reference words) and the headline is the
unweighted mean over datasets. Chunked sets (``parent_id`` + ``chunk_index``) are joined per parent
in chunk order before scoring.
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipeline.config import ConfigError, SourceColumns, TranscribeConfig
from pipeline.sinks.output import read_columns
from pipeline.scoring import make_normalizer, word_errors
from pipeline.storage import Storage

RESULT_COLUMNS = ["id", "text", "reference", "duration_s", "error", "features_seconds", "infer_seconds"]
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    uri: str
    format: str = "auto"
    text_column: str = "text"
    id_column: str = "id"
    audio_column: str | None = None
    parent_column: str | None = None  # chunked sets: the long recording each chunk belongs to
    chunk_column: str | None = None  # chunked sets: the chunk's position in its parent

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"dataset name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if (self.parent_column is None) != (self.chunk_column is None):
            raise ConfigError(f"dataset {self.name}: give both parent_column and chunk_column, or neither")


def parse_dataset_arg(text: str) -> DatasetSpec:
    """``NAME=URI`` from ``--dataset``."""
    name, sep, uri = text.partition("=")
    if not sep or not name or not uri:
        raise ConfigError(f"--dataset expects NAME=URI, got {text!r}")
    return DatasetSpec(name=name.strip(), uri=uri.strip())


def load_dataset_file(path: str) -> list[DatasetSpec]:
    """A YAML or JSON file: ``datasets: [{name, uri, format?, text_column?, id_column?, ...}]``."""
    import yaml  # JSON is a subset of YAML

    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"--datasets {path}: cannot read it ({e})") from e
    entries = raw.get("datasets") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"--datasets {path}: expected a list of datasets under 'datasets:'")
    known = set(DatasetSpec.__dataclass_fields__)
    specs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "uri" not in entry:
            raise ConfigError(f"--datasets {path}: entry {i} needs 'name' and 'uri'")
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"--datasets {path}: entry {entry['name']!r} has unknown keys {sorted(unknown)}")
        specs.append(DatasetSpec(**entry))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--datasets {path}: dataset names must be unique, got {names}")
    return specs


def read_chunk_index(storage: Storage, spec: DatasetSpec) -> dict[str, tuple[str, int]]:
    """``id -> (parent, chunk index)`` read from the dataset's own manifest or Parquet shards."""
    fs, path = storage.filesystem(spec.uri)
    cols = [spec.id_column, spec.parent_column, spec.chunk_column]
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.endswith(".parquet"))
    else:
        files = [path]
    tables = []
    for file in files:
        with fs.open(file, "rb") as f:
            if file.endswith(".parquet"):
                tables.append(pq.read_table(f, columns=cols))
            elif file.endswith(".csv"):
                tables.append(pacsv.read_csv(f).select(cols))
            elif file.endswith((".jsonl", ".json")):
                tables.append(pajson.read_json(f).select(cols))
            else:
                raise ConfigError(f"dataset {spec.name}: chunk columns need a manifest or Parquet source, got {file}")
    rows = pa.concat_tables(tables).to_pylist()
    return {str(r[spec.id_column]): (str(r[spec.parent_column]), int(r[spec.chunk_column])) for r in rows}


def join_chunks(rows: list[dict], chunks: dict[str, tuple[str, int]]) -> list[dict]:
    """One row per parent: texts and references joined with spaces in chunk order, durations summed.

    A parent with any failed chunk keeps the first error (its text is then not scored).
    """
    groups: dict[str, list[tuple[int, dict]]] = {}
    for row in rows:
        parent, index = chunks.get(row["id"], (row["id"], 0))
        groups.setdefault(parent, []).append((index, row))
    out = []
    for parent, members in groups.items():
        members.sort(key=lambda m: m[0])
        parts = [r for _, r in members]
        errors = [r["error"] for r in parts if r["error"]]
        refs = [r["reference"] for r in parts if r["reference"] is not None]
        out.append({
            "id": parent,
            "text": None if errors else " ".join(r["text"] or "" for r in parts).strip(),
            "reference": " ".join(refs).strip() if refs else None,
            "duration_s": sum(r["duration_s"] or 0.0 for r in parts),
            "error": errors[0] if errors else None,
            "chunks": len(parts),
        })
    return out


def score_rows(rows: list[dict], normalizer: str) -> dict:
    """Corpus WER of ``rows`` (leaderboard rules) plus counts."""
    normalize = make_normalizer(normalizer)
    errors = words = scored = empty_refs = failed = no_ref = 0
    for row in rows:
        if row["error"]:
            failed += 1
            continue
        if row["reference"] is None:
            no_ref += 1
            continue
        if not normalize(row["reference"]).split():
            empty_refs += 1
            continue
        e, w = word_errors(row["reference"], row["text"] or "", normalize)
        errors, words, scored = errors + e, words + w, scored + 1
    return {
        "wer": errors / words if words else None,
        "word_errors": errors, "reference_words": words,
        "utterances": len(rows), "scored": scored, "empty_references": empty_refs,
        "failed": failed, "without_reference": no_ref,
        "audio_seconds": sum(r["duration_s"] or 0.0 for r in rows if not r["error"]),
    }


def model_time(rows: list[dict]) -> dict:
    """Leaderboard-style model time: decode + features + inference + text decoding, summed over rows."""
    ok = [r for r in rows if not r["error"]]
    seconds = sum((r.get("features_seconds") or 0.0) + (r.get("infer_seconds") or 0.0) for r in ok)
    audio = sum(r["duration_s"] or 0.0 for r in ok)
    return {"model_seconds": seconds, "rtfx_model": audio / seconds if seconds > 0 else None}


def dataset_config(base: TranscribeConfig, spec: DatasetSpec, output: str) -> TranscribeConfig:
    columns = SourceColumns(audio=spec.audio_column, text=spec.text_column, id=spec.id_column)
    return replace(base, inputs=(spec.uri,), output=output, format=spec.format, columns=columns)


def run_evaluate(specs: list[DatasetSpec], base: TranscribeConfig, output: str, *, model=None, echo=print) -> dict:
    """Transcribe every dataset to ``output/<name>/`` and write ``report.json``, ``report.md``, a chart."""
    from pipeline.model_ref import resolve_model
    from pipeline.evaluation.report import write_reports
    from pipeline.run import run_transcribe

    storage = Storage.from_env(base.s3_endpoint)
    spec_model = model or resolve_model(base.model, base.revision, base.device, base.dtype)
    started = time.monotonic()
    datasets = {}
    for spec in specs:
        out = posixpath.join(output.rstrip("/"), spec.name)
        echo(f"── dataset {spec.name}: {spec.uri}")
        t0 = time.monotonic()
        summary = run_transcribe(dataset_config(base, spec, out), spec_model, echo=echo)
        wall = time.monotonic() - t0
        rows = read_columns(storage, out, RESULT_COLUMNS).to_pylist()
        timing = model_time(rows)
        if spec.parent_column:
            rows = join_chunks(rows, read_chunk_index(storage, spec))
        score = score_rows(rows, base.normalizer)
        score.update(timing)
        score.update(wall_seconds=wall, rtfx=score["audio_seconds"] / wall if wall > 0 else None,
                     rtfx_inferred=summary.get("rtfx"), model=summary.get("model"))
        datasets[spec.name] = score
    wall = time.monotonic() - started
    model_seconds = sum(d["model_seconds"] for d in datasets.values())
    wers = [d["wer"] for d in datasets.values() if d["wer"] is not None]
    audio = sum(d["audio_seconds"] for d in datasets.values())
    report = {
        "datasets": datasets,
        "mean_wer": sum(wers) / len(wers) if wers else None,
        "audio_seconds": audio, "wall_seconds": wall, "rtfx": audio / wall if wall > 0 else None,
        "model_seconds": model_seconds, "rtfx_model": audio / model_seconds if model_seconds > 0 else None,
        "normalizer": base.normalizer, "model": spec_model.name_or_path,
        "settings": base.settings(),
    }
    write_reports(storage, output, report)
    return report


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
