"""Evaluate on one or more datasets the Open ASR Leaderboard way: WER % per dataset, their mean, RTFx.

    python -m jobs.evaluate --datasets leaderboard --output OUT          # the whole English board
    python -m jobs.evaluate --dataset ls-clean=s3://bkt/librispeech/test.clean/ --output s3://bkt/eval/run1
    python -m jobs.evaluate --datasets leaderboard --datasets-root /data/hf-copy --output OUT

Writes OUT/<dataset>/ Parquet (the transcribe columns), OUT/report.json, OUT/report.md, OUT/report.png.
Exits 1 (after writing the reports) when a dataset could not be read or has no successful row.
"""

from __future__ import annotations

import argparse
import sys

from jobs._common import (
    OneLineParser, add_cluster_args, add_model_args, add_storage_args, fail, model_options, resolve_job_model,
    run_job,
)
from pipeline.config import DEFAULT_MAX_FRAMES_PER_PACK, ConfigError, TranscribeConfig

MODULE = "jobs.evaluate"
EVALUATE_NORMALIZERS = ("leaderboard", "whisper", "basic", "none")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=URI",
                        help="a dataset to evaluate (Parquet shards in the HF layout, a manifest, a folder, "
                             "tar shards); repeatable")
    parser.add_argument("--datasets", metavar="FILE_OR_NAME", default=None,
                        help="YAML list of datasets, or 'leaderboard' for the shipped file of the Open ASR "
                             "Leaderboard's English sets")
    parser.add_argument("--datasets-root", metavar="URI", default=None,
                        help="replaces {root} in the --datasets file (default: its 'root:', hf://datasets "
                             "for leaderboard; also $NLE_DATASETS_ROOT), e.g. a local copy of the hub layout")
    parser.add_argument("--output", required=True, metavar="URI", help="output folder or prefix")
    parser.add_argument("--normalizer", choices=EVALUATE_NORMALIZERS, default="leaderboard",
                        help="text normalisation before WER (default: leaderboard, the Open ASR Leaderboard's)")
    add_model_args(parser)
    add_cluster_args(parser)
    parser.add_argument("--max-duration-seconds", type=float, default=3600.0,
                        help="longer inputs become error rows (default: 3600)")
    parser.add_argument("--max-segment-seconds", type=float, default=40.0,
                        help="longer utterances are segmented; chunked sets never are (default: 40)")
    add_storage_args(parser)
    parser.add_argument("--resume", action="store_true", help="add only ids not yet written")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    reports: list[dict] = []
    code = run_job(lambda: reports.append(evaluate(args)), argv, MODULE)
    if code or not reports or not reports[0]["failed_datasets"]:
        return code
    failed = reports[0]["failed_datasets"]
    first = reports[0]["datasets"][failed[0]]["error"]
    more = f" (and {len(failed) - 1} more dataset(s); see report.md)" if len(failed) > 1 else ""
    return fail(f"dataset {failed[0]}: {first}{more}", code=1)


def dataset_specs(args: argparse.Namespace) -> list:
    from pipeline.evaluation.specs import load_dataset_file, parse_dataset_arg

    specs = [parse_dataset_arg(d) for d in args.dataset]
    if args.datasets:
        specs += load_dataset_file(args.datasets, root=args.datasets_root)
    elif args.datasets_root:
        raise ConfigError("--datasets-root needs --datasets (it fills {root} in that file)")
    if not specs:
        raise ConfigError("give at least one --dataset NAME=URI or --datasets FILE (or --datasets leaderboard)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset names must be unique across --dataset and --datasets, got {names}")
    return specs


def evaluate(args: argparse.Namespace) -> dict:
    from pipeline.evaluation.evaluate import run_evaluate

    specs = dataset_specs(args)
    base = TranscribeConfig(
        inputs=(specs[0].uri,), output=args.output, model=args.model, revision=args.revision,
        editing_steps=args.editing_steps, device=args.device, dtype=args.dtype, actors=args.actors,
        gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor,
        max_frames_per_pack=args.max_frames_per_pack or DEFAULT_MAX_FRAMES_PER_PACK,
        max_duration_seconds=args.max_duration_seconds, max_segment_seconds=args.max_segment_seconds,
        normalizer=args.normalizer, s3_endpoint=args.s3_endpoint,
        resume=args.resume, overwrite=args.overwrite, **model_options(args))
    report = run_evaluate(specs, base, args.output, model=resolve_job_model(base))
    print_table(report, args.output)
    return report


def print_table(report: dict, output: str) -> None:
    print()
    print(f"{'dataset':<28} {'scored':>7} {'hours':>7} {'WER %':>8} {'RTFx':>9} {'dropped':>8} {'failed':>7}")
    for name, d in report["datasets"].items():
        if "utterances" not in d:
            print(f"{name:<28} {'':>7} {'':>7} {'failed':>8}")
            continue
        wer = "failed" if d.get("error") else f"{d['wer_percent']:.2f}"
        rtfx = "—" if d["rtfx"] is None else f"{d['rtfx']:.2f}"
        print(f"{name:<28} {d['utterances']:>7} {d['audio_seconds'] / 3600:>7.3f} {wer:>8} {rtfx:>9} "
              f"{d['dropped_unscorable']:>8} {d['failed']:>7}")
    mean = "—" if report["mean_wer_percent"] is None else f"{report['mean_wer_percent']:.2f}"
    rtfx = "—" if report["rtfx"] is None else f"{report['rtfx']:.2f}"
    print(f"{'average':<28} {'':>7} {'':>7} {mean:>8} {rtfx:>9}   job RTFx {report['rtfx_job'] or 0:.2f}")
    from pipeline.cluster import absolute_uri

    print(f"report: {absolute_uri(output).rstrip('/')}/report.md")


if __name__ == "__main__":
    sys.exit(main())
