"""python -m jobs.benchmark: packed vs padded throughput, accelerator busy fraction, scaling, decode cost.

    python -m jobs.benchmark --size small --scale-rows 1000000 --json bench.json
    python -m jobs.benchmark --size real --device cuda --json bench-cuda.json   # + largest pack that fits
    python -m jobs.benchmark --null-model --size tiny --json standin.json      # the pipeline without the model
    python -m jobs.benchmark --compare run1.json run2.json                     # do two runs agree within 10 %?
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jobs._common import OneLineParser, finite_number, whole_number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m jobs.benchmark", description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=("tiny", "small", "real"), default="small",
                   help="model dimensions (random seeded weights); 'real' = the checkpoint's (default: small)")
    p.add_argument("--count", type=whole_number(2), default=48, help="utterances in the synthetic corpus (default: 48)")
    p.add_argument("--seed", type=whole_number(0), default=0, help="corpus and weight seed (default: 0)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="default: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--padded-batch-size", type=whole_number(1), default=8, help="batch size of the padded baseline (default: 8)")
    p.add_argument("--max-frames-per-pack", type=whole_number(1), default=8000, help="frame budget of a packed forward")
    p.add_argument("--threads", type=whole_number(0), default=0, help="torch threads (default: all cores)")
    p.add_argument("--scale-factor", type=whole_number(2), default=10, help="scaling run size as a multiple of --count")
    p.add_argument("--repeats", type=whole_number(1), default=2,
                   help="runs of the scaled pipeline corpus, to report the spread of its figures (default: 2)")
    p.add_argument("--no-pipeline", action="store_true", help="skip the Ray pipeline parts (busy fraction, scaling)")
    p.add_argument("--no-codecs", action="store_true", help="skip the decode cost per codec (FLAC, MP3, Opus, AAC)")
    p.add_argument("--codec-seconds", type=finite_number(0, inclusive=True), default=3.0,
                   help="CPU seconds of decoding per codec for the decode cost, spread over the stand-in's "
                        "slots: the first slot runs its share (and 2 passes), the later ones as many passes "
                        "(default: 3)")
    p.add_argument("--scale-rows", type=whole_number(0), default=0,
                   help="rows of the generated manifest of the scale run, e.g. 1000000 (default: 0, no scale run)")
    p.add_argument("--scale-corpus-mb", type=finite_number(0), default=300.0,
                   help="size of the WebDataset and Parquet corpora of the scale run (default: 300)")
    p.add_argument("--timestamps", choices=("none", "word"), default="none",
                   help="word: also report alignment_share, the forced alignment's cost / inference time")
    p.add_argument("--numerics", choices=("hub", "transformers"), default=None,
                   help="numerics profile of the main run (default: the random checkpoint's own, transformers); "
                        "both are also timed side by side")
    p.add_argument("--simulate-rtfx", type=finite_number(0), nargs="+", default=[1000.0, 4000.0, 8000.0], metavar="R",
                   help="RTFx of the stand-in accelerator for the busy figures (default: 1000 4000 8000)")
    p.add_argument("--model-repeats", type=whole_number(1), default=5,
                   help="timings of each model-only way (packed, padded), the median reported; the numerics "
                        "profiles are timed min(3, this) times (default: 5)")
    p.add_argument("--standin-repeats", type=whole_number(1), default=5,
                   help="runs of the stand-in pipeline at each R, medians reported (default: %(default)s)")
    p.add_argument("--steal-reruns", type=whole_number(0), default=6,
                   help="stand-in pipeline runs run again, at most, because the VM's host stole more than "
                        "10%% of the machine's time in their steady window, 5%% at R = inf (0: never; "
                        "default: %(default)s)")
    p.add_argument("--measure-seconds", type=finite_number(0), default=0.4,
                   help="CPU seconds of each of the 15 windows of the stand-in ceiling (CEILING_WINDOWS); the feature timings "
                        "last 5x this (default: 0.4)")
    p.add_argument("--null-model", action="store_true",
                   help="skip the model's own timings and runs: only the stand-in accelerator's figures "
                        "(ceiling at R = inf, busy at each --simulate-rtfx), features and decoding")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--compare", type=Path, nargs=2, default=None, metavar=("RUN1", "RUN2"),
                   help="compare two --json files on their compared_ratios (exit 1 when one differs by more "
                        "than 10 %%); nothing is run")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's notices and worker output (default: Ray's own log files only)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    from model import resolve_device, resolve_dtype
    from bench.core import BenchmarkConfig, format_table, run_benchmark

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json is not None and (problem := unwritable(args.json)):     # last: it may make folders
        print(f"error: cannot write --json {args.json}: {problem}", file=sys.stderr)
        return 2
    dtype = str(resolve_dtype(args.dtype, device)).removeprefix("torch.")
    cfg = BenchmarkConfig(size=args.size, count=args.count, seed=args.seed, device=str(device), dtype=dtype,
                          padded_batch_size=args.padded_batch_size, max_frames_per_pack=args.max_frames_per_pack,
                          threads=args.threads, pipeline=not args.no_pipeline, scale_factor=args.scale_factor,
                          repeats=args.repeats, codecs=not args.no_codecs,
                          codec_seconds=args.codec_seconds,
                          find_max_pack=str(device).startswith("cuda"),
                          scale_rows=args.scale_rows, scale_corpus_mb=args.scale_corpus_mb,
                          numerics=args.numerics, timestamps=args.timestamps,
                          simulate_rtfx=tuple(args.simulate_rtfx), null_model=args.null_model,
                          standin_repeats=args.standin_repeats, steal_reruns=args.steal_reruns,
                          measure_seconds=args.measure_seconds,
                          model_repeats=args.model_repeats)
    from pipeline.cluster import quiet_console

    with quiet_console(args.verbose):   # Ray's notices and the core worker's false alarm: logs only
        result = run_benchmark(cfg)
    print()
    print(format_table(result))
    if args.json:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
        except OSError as e:
            print(f"error: cannot write --json {args.json}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"\nwrote {args.json}")
    return 0


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot take the results, found before the run rather than after it: its folder
    cannot be made, or the file cannot be opened for writing (tried, and removed again when it was
    not there before); ``None`` when it can."""
    if path.is_dir():
        return "it is a folder"
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    existed = path.exists()
    made = [p for p in reversed(path.absolute().parents) if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as e:
        for folder in reversed(made):       # leave nothing behind for a refused run
            if folder.exists():
                folder.rmdir()
        return e.strerror or str(e)
    if not existed:
        path.unlink()
    return None


def compare(first: Path, second: Path) -> int:
    """Print how two benchmark JSONs differ on their compared ratios; 0 when all agree within 10 %."""
    from bench.core import compare_runs

    runs = []
    for path in (first, second):
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"error: cannot read a benchmark JSON: {e}", file=sys.stderr)
            return 2
        if problem := benchmark_json_problem(run):
            print(f"error: {path} is not a jobs.benchmark --json file: {problem}", file=sys.stderr)
            return 2
        runs.append(run)
    if not set(runs[0]["compared_ratios"]) & set(runs[1]["compared_ratios"]):
        print(f"error: {first} and {second} share no compared figure (runs of different kinds)", file=sys.stderr)
        return 2
    from bench.machine import compare_reference

    lines, ok = compare_runs(*runs)
    print("\n".join(lines + compare_reference(*runs)))
    print("every compared figure agrees within 10 %" if ok else "some figures differ by more than 10 %")
    return 0 if ok else 1


def benchmark_json_problem(run) -> str | None:
    """What keeps ``run`` (a parsed JSON) from being compared: not an object, or no
    ``compared_ratios`` of ``{"value": number}`` entries; ``None`` when it can be."""
    if not isinstance(run, dict):
        return f"a JSON {type(run).__name__}, not an object"
    ratios = run.get("compared_ratios")
    if not isinstance(ratios, dict) or not ratios:
        return "no compared_ratios"
    if not isinstance(run.get("machine_reference", {}), dict):
        return "machine_reference is not an object"
    for name, entry in ratios.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"compared_ratios[{name!r}] has no numeric value"
    return None


if __name__ == "__main__":
    sys.exit(main())
