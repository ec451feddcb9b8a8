"""Evaluate on one or more datasets the Open ASR Leaderboard way: WER % per dataset, their mean, RTFx.

    python -m jobs.evaluate --datasets leaderboard --output OUT          # the whole English board
    python -m jobs.evaluate --dataset ls-clean=s3://bkt/librispeech/test.clean/ --output s3://bkt/eval/run1
    python -m jobs.evaluate --datasets leaderboard --datasets-root /data/hf-copy --output OUT
    python -m jobs.evaluate --datasets leaderboard-multilingual --output OUT  # fleurs/mcv/mls de fr es pt
    python -m jobs.evaluate --datasets leaderboard-longform --output OUT      # earnings21/22, tedlium, CORAAL
    python -m jobs.evaluate --datasets leaderboard,leaderboard-multilingual --output OUT
    python -m jobs.evaluate --dataset mine=s3://bkt/de/ --language de --output OUT

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
from pipeline.evaluation.tracks import LEADERBOARD_FILES, LEADERBOARD_NUMERICS, LEADERBOARD_REVISION

MODULE = "jobs.evaluate"
DEFAULT_MAX_DURATION_SECONDS = 3600.0
EVALUATE_NORMALIZERS = ("leaderboard", "whisper", "basic", "none")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=URI",
                        help="a dataset to evaluate (Parquet shards in the HF layout, a manifest, a folder, "
                             "tar shards); repeatable")
    parser.add_argument("--datasets", metavar="FILE_OR_NAME[,...]", default=None,
                        help="YAML list of datasets, or a shipped track of the Open ASR Leaderboard: "
                             "leaderboard (English), leaderboard-multilingual, leaderboard-longform; "
                             "several with commas. A shipped track runs the model revision the "
                             "leaderboard pins, with hub numerics, unless --revision/--numerics say otherwise")
    parser.add_argument("--language", default="en", metavar="LANG",
                        help="language (ISO 639-1) of the --dataset sets: picks the leaderboard normaliser "
                             "for it and, when not en, the multilingual scoring (default: en); dataset "
                             "files give language per entry")
    parser.add_argument("--datasets-root", metavar="URI", default=None,
                        help="replaces {root} in the --datasets file (default: its 'root:', hf://datasets "
                             "for leaderboard; also $NLE_DATASETS_ROOT), e.g. a local copy of the hub layout")
    parser.add_argument("--output", required=True, metavar="URI", help="output folder or prefix")
    parser.add_argument("--normalizer", choices=EVALUATE_NORMALIZERS, default="leaderboard",
                        help="text normalisation before WER (default: leaderboard, the Open ASR Leaderboard's)")
    add_model_args(parser)
    add_cluster_args(parser)
    parser.add_argument("--max-duration-seconds", type=float, default=None,
                        help="longer inputs become error rows (default: 3600; 14400 for the long-form "
                             "track, whose earnings calls run past an hour)")
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
    from pipeline.text import make_normalizer

    own = [parse_dataset_arg(d, args.language) for d in args.dataset]
    specs = list(own)
    for name in dataset_files(args):
        specs += load_dataset_file(name, root=args.datasets_root)
    if args.datasets_root and not dataset_files(args):
        raise ConfigError("--datasets-root needs --datasets (it fills {root} in that file)")
    if not specs:
        raise ConfigError("give at least one --dataset NAME=URI or --datasets FILE (or --datasets leaderboard)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset names must be unique across --dataset and --datasets, got {names}")
    for spec in specs:
        try:
            make_normalizer(args.normalizer, spec.language if args.normalizer == "leaderboard" else None)
        except ValueError as e:
            where = f"--language {spec.language}" if spec in own else f"dataset {spec.name}"
            raise ConfigError(f"{where}: {e}") from e
    return specs


def dataset_files(args: argparse.Namespace) -> list[str]:
    """The ``--datasets`` files or shipped names, split on commas."""
    return [p.strip() for p in (args.datasets or "").split(",") if p.strip()]


def leaderboard_model_options(args: argparse.Namespace) -> dict:
    """``revision`` and ``numerics``: for a run of a shipped leaderboard track, the revision the
    leaderboard pins and ``hub`` numerics (what it ran), unless ``--revision``/``--numerics`` are
    given; otherwise the flags as given."""
    options = {**model_options(args), "revision": args.revision}
    if any(name in LEADERBOARD_FILES for name in dataset_files(args)):
        options["revision"] = args.revision or LEADERBOARD_REVISION
        options["numerics"] = options.get("numerics") or LEADERBOARD_NUMERICS
    return options


def evaluate(args: argparse.Namespace) -> dict:
    from pipeline.evaluation.evaluate import run_evaluate

    specs = dataset_specs(args)
    base = TranscribeConfig(
        inputs=(specs[0].uri,), output=args.output, model=args.model,
        editing_steps=args.editing_steps, device=args.device, dtype=args.dtype, actors=args.actors,
        gpus_per_actor=args.gpus_per_actor, cpus_per_actor=args.cpus_per_actor,
        max_frames_per_pack=args.max_frames_per_pack or DEFAULT_MAX_FRAMES_PER_PACK,
        max_duration_seconds=args.max_duration_seconds or DEFAULT_MAX_DURATION_SECONDS,
        max_segment_seconds=args.max_segment_seconds,
        normalizer=args.normalizer, s3_endpoint=args.s3_endpoint,
        resume=args.resume, overwrite=args.overwrite, **leaderboard_model_options(args))
    report = run_evaluate(specs, base, args.output, model=resolve_job_model(base),
                          max_duration_seconds=args.max_duration_seconds)
    print_table(report, args.output)
    return report


def print_table(report: dict, output: str) -> None:
    """The console table (:func:`pipeline.evaluation.report.console_table`) and where the report is."""
    from pipeline.cluster import absolute_uri
    from pipeline.evaluation.report import console_table

    print()
    print(console_table(report))
    print(f"report: {absolute_uri(output).rstrip('/')}/report.md")


if __name__ == "__main__":
    sys.exit(main())
