"""Evaluate on one or more datasets the Open ASR Leaderboard way: WER per dataset, mean WER, RTFx.

    python -m jobs.evaluate --dataset ls-clean=s3://bkt/librispeech/test.clean/ --output s3://bkt/eval/run1
    python -m jobs.evaluate --datasets datasets.yaml --output eval/run1

Writes OUT/<dataset>/ Parquet (the transcribe columns), OUT/report.json, OUT/report.md, OUT/report.png.
"""

from __future__ import annotations

import argparse
import sys

from jobs._common import (
    OneLineParser, add_audio_args, add_cluster_args, add_model_args, add_storage_args, resolve_job_model, run_job,
)
from pipeline.config import DEFAULT_MAX_FRAMES_PER_PACK, NORMALIZERS, ConfigError, TranscribeConfig

MODULE = "jobs.evaluate"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=URI",
                        help="a dataset to evaluate (Parquet shards in the HF layout, a manifest, a folder, "
                             "tar shards); repeatable")
    parser.add_argument("--datasets", metavar="FILE", default=None,
                        help="YAML/JSON list of datasets with name, uri and optional format, text_column, "
                             "id_column, audio_column, parent_column + chunk_column (chunked sets)")
    parser.add_argument("--output", required=True, metavar="URI", help="output folder or prefix")
    parser.add_argument("--normalizer", choices=NORMALIZERS, default="english",
                        help="text normalisation before WER (default: english, Whisper's)")
    add_model_args(parser)
    add_cluster_args(parser)
    add_audio_args(parser)
    add_storage_args(parser)
    parser.add_argument("--resume", action="store_true", help="add only ids not yet written")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return run_job(lambda: evaluate(args), argv, MODULE)


def evaluate(args: argparse.Namespace) -> None:
    from pipeline.cluster import absolute_uri
    from pipeline.evaluation.evaluate import load_dataset_file, parse_dataset_arg, run_evaluate

    specs = [parse_dataset_arg(d) for d in args.dataset]
    if args.datasets:
        specs += load_dataset_file(args.datasets)
    if not specs:
        raise ConfigError("give at least one --dataset NAME=URI or a --datasets FILE")
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError("dataset names must be unique")
    base = TranscribeConfig(
        inputs=(specs[0].uri,), output=args.output, model=args.model, revision=args.revision,
        editing_steps=args.editing_steps, device=args.device, dtype=args.dtype, actors=args.actors,
        gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor,
        max_frames_per_pack=args.max_frames_per_pack or DEFAULT_MAX_FRAMES_PER_PACK,
        max_duration_seconds=args.max_duration_seconds, max_segment_seconds=args.max_segment_seconds,
        silence_dbfs=args.silence_dbfs, normalizer=args.normalizer, s3_endpoint=args.s3_endpoint,
        resume=args.resume, overwrite=args.overwrite)
    report = run_evaluate(specs, base, args.output, model=resolve_job_model(base))
    print()
    print(f"{'dataset':<24} {'utts':>6} {'hours':>7} {'WER %':>7} {'RTFx':>8} {'model RTFx':>11}")
    for name, d in report["datasets"].items():
        wer = "—" if d["wer"] is None else f"{100 * d['wer']:.2f}"
        print(f"{name:<24} {d['utterances']:>6} {d['audio_seconds'] / 3600:>7.3f} {wer:>7} {d['rtfx'] or 0:>8.1f} "
              f"{d['rtfx_model'] or 0:>11.1f}")
    mean = "—" if report["mean_wer"] is None else f"{100 * report['mean_wer']:.2f}"
    print(f"{'mean':<24} {'':>6} {'':>7} {mean:>7}   job RTFx {report['rtfx'] or 0:.1f}")
    print(f"report: {absolute_uri(args.output).rstrip('/')}/report.md")


if __name__ == "__main__":
    sys.exit(main())
