"""Flags shared by the jobs (model, cluster, storage) and the few lines around running one."""

from __future__ import annotations

import argparse
import shlex
import sys

from pipeline.config import DEFAULT_MODEL, DEVICES, DTYPES, ConfigError, parse_actors

TEST_CHECKPOINT = "tests/fixtures/granite-nar-tiny"


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help="hub id or local checkpoint folder (default: %(default)s)")
    group.add_argument("--revision", default=None, help="hub branch, tag or commit")
    group.add_argument("--editing-steps", type=int, default=1, help="editor passes (default: 1)")
    group.add_argument("--device", choices=DEVICES, default="auto")
    group.add_argument("--dtype", choices=DTYPES, default=None,
                       help="default: float32 on CPU, bfloat16 on CUDA")


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--actors", type=_actors, default=None, metavar="MIN,MAX",
                       help="inference actor pool size (default: one per GPU, else 1)")
    group.add_argument("--gpus-per-actor", type=float, default=None,
                       help="default: 1 when the cluster has GPUs, else 0")
    group.add_argument("--cpus-per-actor", type=float, default=None)
    group.add_argument("--max-frames-per-pack", type=int, default=None,
                       help="feature frames (50 per second) per padding-free forward")


def add_storage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--s3-endpoint", default=None,
                        help="S3-compatible endpoint URL (default: $AWS_ENDPOINT_URL_S3 or "
                             "$AWS_ENDPOINT_URL)")


def _actors(text: str) -> tuple[int, int]:
    try:
        return parse_actors(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def with_test_model(argv: list[str], module: str) -> str:
    """The same command line with ``--model`` pointing at the random test checkpoint."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--model":
            skip = True
            continue
        if arg.startswith("--model="):
            continue
        out.append(arg)
    return shlex.join(["python", "-m", module, *out, "--model", TEST_CHECKPOINT])


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
