"""Pseudo-label a corpus: transcribe, score each label, filter, write a training-ready kept set.

    python -m jobs.pseudo_label --input s3://bkt/unlabelled/ --output s3://bkt/pl/run1 \\
        --min-confidence 0.9 --max-draft-disagreement 0.2 --min-label-seconds 1 --max-label-seconds 30

Writes under OUT: transcripts/ (the transcribe columns, with the audio bytes), scored/ (+
draft_disagreement, keep, reject_reason, kept_audio), kept_audio/ (each kept label's audio as
16 kHz mono FLAC), kept/ (HF datasets Parquet, audio bytes inside), kept_manifest/ (NeMo JSON-lines
manifests), kept_wds/ (WebDataset tars, with --kept-format webdataset), histograms.png and
_pseudo_label_summary.json. Every filter is off unless its flag is given.

Refusing an input is not filtering a label: --max-duration-seconds refuses an input before it is
decoded (an error row, no transcript); --max-label-seconds drops a finished transcript from the
kept set (reject_reason too_long) and it stays in scored/.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from dataclasses import replace

from jobs import transcribe
from jobs._common import resolve_job_model, run_job
from pipeline.config import ConfigError

MODULE = "jobs.pseudo_label"
SUMMARY_NAME = "_pseudo_label_summary.json"
DEFAULT_KEPT_FORMATS = "hf,nemo"


def add_filter_args(parser: argparse.ArgumentParser) -> None:
    f = parser.add_argument_group(
        "label filters (each is off unless given; a rejected row stays in scored/ with its "
        "reject_reason)")
    f.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="keep labels whose model confidence (0-1) is at least P; unset: off")
    f.add_argument("--max-draft-disagreement", type=float, default=None, metavar="F",
                   help="keep labels whose final text differs from the encoder's draft by at most "
                        "F (word edits / longer text, 0-1); unset: off")
    f.add_argument("--min-label-seconds", "--min-duration", dest="min_label_seconds", type=float,
                   default=None, metavar="S",
                   help="keep labels of at least S seconds of audio (reject_reason too_short); "
                        "unset: off. --min-duration is the old name")
    f.add_argument("--max-label-seconds", "--max-duration", dest="max_label_seconds", type=float,
                   default=None, metavar="S",
                   help="keep labels of at most S seconds of audio (reject_reason too_long); "
                        "unset: off. It filters a finished transcript, unlike "
                        "--max-duration-seconds, which refuses an input before decoding it. "
                        "--max-duration is the old name")
    f.add_argument("--max-wer", type=float, default=None, metavar="F",
                   help="keep labels whose WER (fraction) against the existing transcript in "
                        "--text-column is at most F; a row whose transcript normalises to nothing "
                        "(empty, fillers, [tags]) is rejected as no_reference (distil-whisper's "
                        "rule); same --normalizer as the WER; unset: off")
    parser.add_argument("--kept-format", default=DEFAULT_KEPT_FORMATS, metavar="LIST",
                        help="comma-separated layouts of the kept set: hf (Parquet, "
                             "datasets' Audio layout), nemo (JSON-lines manifests), webdataset "
                             f"(tar shards) (default: {DEFAULT_KEPT_FORMATS})")


def build_parser() -> argparse.ArgumentParser:
    """The transcribe flags (inputs, model, cluster, storage, audio limits) plus the label filters."""
    p = transcribe.build_parser()
    p.prog, p.description = f"python -m {MODULE}", __doc__.split("\n")[0]
    add_filter_args(p)
    return p


def parse_formats(text: str) -> tuple[str, ...]:
    from pipeline.pseudo_label.kept_set import KEPT_FORMATS

    formats = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in KEPT_FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--kept-format {text!r}: use a comma-separated list of "
                          f"{', '.join(KEPT_FORMATS)}")
    return formats


def filters_from_args(args: argparse.Namespace):
    from pipeline.pseudo_label.filters import Filters

    for name in ("min_confidence", "max_draft_disagreement", "min_label_seconds",
                 "max_label_seconds", "max_wer"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    return Filters(args.min_confidence, args.max_draft_disagreement, args.min_label_seconds,
                   args.max_label_seconds, args.max_wer)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return run_job(lambda: pseudo_label(args), argv, MODULE)


def pseudo_label(args: argparse.Namespace) -> dict:
    from pipeline.pseudo_label.kept_set import (
        FORMAT_DIRS, SCORED_DIR, build_kept_set, clear_derived, has_derived,
    )
    from pipeline.pseudo_label.stats import filter_stats
    from pipeline.run import run_transcribe
    from pipeline.sinks.atomic_fs import write_bytes_atomically
    from pipeline.storage import Storage, is_remote

    out = args.output.rstrip("/")
    filters = filters_from_args(args)
    formats = parse_formats(args.kept_format)
    storage = Storage.from_env(args.s3_endpoint)
    # The audio bytes ride along with the transcripts, so the kept set never reads the corpus twice.
    config = replace(transcribe.config_from_args(args), output=posixpath.join(out, "transcripts"),
                     with_audio=True)
    if not (args.resume or args.overwrite) and has_derived(storage, out):
        raise ConfigError(f"--output {out} already holds a kept set; pass --resume to finish the "
                          "transcripts and rebuild it, or --overwrite to start over")
    spec = resolve_job_model(config)
    transcribed = run_transcribe(config, spec)
    clear_derived(storage, out)   # the kept set is rebuilt from all transcripts: no duplicates
    build_kept_set(storage, out, filters, args.normalizer, formats)
    summary, png = filter_stats(storage, out, SCORED_DIR, filters)
    summary.update(filters=filters.as_dict(), kept_formats=list(formats),
                   layouts={f: f"{out}/{FORMAT_DIRS[f]}/" for f in formats},
                   model=transcribed["model"], rows_inferred=transcribed["rows_inferred"])
    fs, root = storage.filesystem(out)
    for name, data in (("histograms.png", png),
                       (SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True).encode())):
        target = posixpath.join(root, name)
        if is_remote(out):
            fs.pipe_file(target, data)
        else:
            write_bytes_atomically(target, data)
    print(format_summary(summary, out))
    from pipeline.cluster import results_line

    print(results_line(out))
    return summary


def format_summary(summary: dict, out: str) -> str:
    lines = ["── pseudo-label summary " + "─" * 40,
             f"kept            {summary['kept']} of {summary['rows']} "
             f"({summary['kept_hours']:.3f} h of audio)"]
    for reason, value in summary["rejected_by"].items():
        lines.append(f"  rejected ×{value['rows']:<6} {reason:<20} {value['hours']:.3f} h")
    for fmt, path in summary["layouts"].items():
        lines.append(f"{fmt:<15} {path}")
    lines.append(f"picture         {out}/histograms.png")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
