"""Pseudo-label a corpus: transcribe, score each label (confidence, draft/edit disagreement), filter.

    python -m jobs.pseudo_label --input s3://bkt/unlabelled/ --output s3://bkt/pl/run1 \\
        --min-confidence 0.9 --max-draft-disagreement 0.2 --min-duration 1 --max-duration 30 --with-audio

Writes OUT/transcripts/ (the transcribe columns), OUT/scored/ (+ draft_disagreement, keep,
reject_reason), OUT/kept/ (HF audio-layout Parquet of the kept rows), OUT/kept_manifest.jsonl (NeMo),
OUT/histograms.png and OUT/_pseudo_label_summary.json.
"""

from __future__ import annotations

import argparse
import posixpath
import sys

from dataclasses import replace

from jobs import transcribe
from jobs._common import resolve_job_model, run_job
from pipeline.config import ConfigError

MODULE = "jobs.pseudo_label"
ROW_COLUMNS = ["id", "source", "duration_s", "text", "draft_text", "token_ids", "confidence", "reference", "error",
               "model"]


def build_parser() -> argparse.ArgumentParser:
    """The transcribe flags (inputs, model, cluster, storage, audio limits) plus the label filters."""
    p = transcribe.build_parser()
    p.prog, p.description = f"python -m {MODULE}", __doc__.split("\n")[0]
    f = p.add_argument_group("filters (--text-column names an existing, noisy transcript for --max-wer)")
    f.add_argument("--min-confidence", type=float, default=None)
    f.add_argument("--max-draft-disagreement", type=float, default=None)
    f.add_argument("--min-duration", type=float, default=None, help="seconds")
    f.add_argument("--max-duration", type=float, default=None, help="seconds")
    f.add_argument("--max-wer", type=float, default=None, help="against --text-column, where the source has it")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return run_job(lambda: pseudo_label(args), argv, MODULE)


def pseudo_label(args: argparse.Namespace) -> None:
    from pipeline.sinks.output import read_columns
    from pipeline.pseudo_label.filters import Filters, counts, score_and_filter, write_outputs
    from pipeline.run import run_transcribe
    from pipeline.storage import Storage

    out = args.output.rstrip("/")
    for name in ("min_confidence", "max_draft_disagreement", "max_wer"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    filters = Filters(args.min_confidence, args.max_draft_disagreement, args.min_duration, args.max_duration,
                      args.max_wer)
    config = replace(transcribe.config_from_args(args), output=posixpath.join(out, "transcripts"))
    spec = resolve_job_model(config)
    run_transcribe(config, spec)
    storage = Storage.from_env(args.s3_endpoint)
    columns = ROW_COLUMNS + (["audio"] if args.with_audio else [])
    rows = score_and_filter(read_columns(storage, config.output, columns).to_pylist(), filters, args.normalizer)
    summary = {**counts(rows), "filters": filters.__dict__, "model": spec.name_or_path}
    fs, root = storage.filesystem(out)
    write_outputs(fs, root, rows, summary)
    print(f"\npseudo-labels: kept {summary['kept']} of {summary['rows']} "
          f"({summary['kept_audio_seconds']:.1f} s of audio); rejected by rule: {summary['rejected_by'] or 'none'}")
    print(f"kept set: {out}/kept/ (HF audio Parquet), {out}/kept_manifest.jsonl (NeMo); scored: {out}/scored/")


if __name__ == "__main__":
    sys.exit(main())
