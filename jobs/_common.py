"""Flags shared by the jobs (model, cluster, storage) and the few lines around running one."""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import shlex
import sys

from pipeline.config import (
    DEFAULT_MODEL, DEVICES, DTYPES, FEATURES_ON, NUMERICS, SUBTITLE_FORMATS, TIMESTAMPS, ConfigError, parse_actors,
)
from pipeline.storage import redact_env_credentials, storage_advice, storage_error_line

TEST_CHECKPOINT = "tests/fixtures/granite-nar-tiny"
NUMBER = re.compile(r"^-\d|^-\.\d")
# A flag a shared error message names → what a job without it calls the same thing.
FLAG_EQUIVALENTS = {"--input": "--dataset"}


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage mistakes are one line (the problem, and where to look), not the
    whole usage block. Flags are never abbreviated (``--editing-step`` is not
    ``--editing-steps``); an unknown flag is named first, with the closest real one
    (``difflib``), before any complaint about a missing required flag it may have been meant as."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")

    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        self.check_flags(argv)
        return super().parse_known_args(argv, namespace)

    def check_flags(self, argv: list[str]) -> None:
        """``error`` for the first ``--flag`` this parser does not have (values that are
        negative numbers, and everything after ``--``, are not flags)."""
        known = sorted(flag for flag in self._option_string_actions if flag.startswith("--"))
        for token in argv:
            if token == "--":
                return
            if not token.startswith("--") or NUMBER.match(token):
                continue
            flag = token.split("=", 1)[0]
            if flag not in self._option_string_actions:
                equivalent = FLAG_EQUIVALENTS.get(flag)
                close = [equivalent] if equivalent in known else \
                    difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.error(f"unrecognized argument {flag}{hint}")


def whole_number(minimum: int):
    """An argparse ``type``: a whole number >= ``minimum``, else argparse's one-line error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
        return value
    return parse


def finite_number(minimum: float, *, inclusive: bool = False, allow_inf: bool = False):
    """An argparse ``type``: a number > ``minimum`` (>= with ``inclusive``), finite unless
    ``allow_inf``; NaN never passes."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value >= minimum if inclusive else value > minimum
        if not above or (math.isinf(value) and not allow_inf):
            bound = f"{'>=' if inclusive else '>'} {minimum:g}"
            raise argparse.ArgumentTypeError(
                f"must be a {'' if allow_inf else 'finite '}number {bound}{' or inf' if allow_inf else ''}, got {text!r}")
        return value
    return parse


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help="hub id or local checkpoint folder (default: %(default)s)")
    group.add_argument("--revision", default=None, help="hub branch, tag or commit")
    group.add_argument("--editing-steps", type=int, default=1, help="editor passes (default: 1)")
    group.add_argument("--device", choices=DEVICES, default="auto")
    group.add_argument("--dtype", choices=DTYPES, default=None,
                       help="default: float32 on CPU, bfloat16 on CUDA")
    group.add_argument("--numerics", choices=NUMERICS, default=None,
                       help="which reference's numerics to compute: hub (the checkpoint's own code, "
                            "what the leaderboard runs) or transformers (the transformers port); "
                            "default: the checkpoint's own (hub for the original layout)")
    group.add_argument("--timestamps", choices=TIMESTAMPS, default="none",
                       help="word or segment times from the model's CTC head (default: none)")
    group.add_argument("--subtitles", type=_subtitle_formats, default=(), metavar="srt,vtt,ctm",
                       help="write subtitle/word-time files under OUT/subtitles/ (implies "
                            "--timestamps word)")
    group.add_argument("--features-on", choices=FEATURES_ON, default="cpu",
                       help="compute log-mel features in the CPU decode tasks, or in the inference "
                            "actor on its device, one batched call per pack (decoders then ship "
                            "16 kHz samples); default: cpu")


def model_options(args: argparse.Namespace) -> dict:
    """The :class:`~pipeline.config.TranscribeConfig` fields of :func:`add_model_args`' newer flags."""
    subtitles = tuple(getattr(args, "subtitles", ()) or ())
    timestamps = getattr(args, "timestamps", "none")
    if subtitles and timestamps == "none":
        timestamps = "word"
    return {"numerics": getattr(args, "numerics", None), "timestamps": timestamps,
            "subtitles": subtitles, "features_on": getattr(args, "features_on", "cpu")}


def _subtitle_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [f for f in formats if f not in SUBTITLE_FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(
            f"--subtitles takes a comma-separated list of {', '.join(SUBTITLE_FORMATS)}, got {text!r}")
    return formats


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster")
    group.add_argument("--actors", type=_actors, default=None, metavar="MIN,MAX",
                       help="inference actor pool size (default: one per GPU, else 1)")
    group.add_argument("--gpus-per-actor", type=float, default=None,
                       help="default: 1 when the cluster has GPUs, else 0")
    group.add_argument("--cpus-per-actor", type=float, default=None)
    group.add_argument("--max-frames-per-pack", type=int, default=None,
                       help="feature frames (50 per second) per padding-free forward")
    group.add_argument("--output-is-shared", action="store_true",
                       help="a local --output is on storage every node mounts (NFS, a shared "
                            "volume): allow it on a multi-node cluster")
    group.add_argument("--verbose", action="store_true",
                       help="show Ray's INFO logs and worker output (default: Ray's own log "
                            "files only)")


def add_audio_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("audio")
    group.add_argument("--max-duration-seconds", type=float, default=3600.0,
                       help="longer inputs become error rows, refused from the header (default: 3600)")
    group.add_argument("--max-segment-seconds", type=float, default=40.0,
                       help="longer inputs are cut at quiet points and joined back (default: 40)")
    group.add_argument("--silence-dbfs", type=float, default=-60.0,
                       help="quieter inputs get empty text without running the model (default: -60)")
    group.add_argument("--channel", default=None, metavar="N|all",
                       help="transcribe channel N (0-based) of every input without its own "
                            "'channel' field, or 'all': one row per channel, ids <id>#ch<N> "
                            "(default: the mean of the channels)")


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
    """Print ``message`` as one ``error:`` line on stderr (credentials blanked) and return ``code``."""
    first = redact_env_credentials(str(message)).strip().splitlines() or ["unknown error"]
    sys.stdout.flush()
    # On a terminal a progress bar may hold the current line: return to its start and clear it,
    # so the error line never runs on from a bar.
    start = "\r\x1b[K" if sys.stderr.isatty() else ""
    print(f"{start}error: {first[0]}", file=sys.stderr)
    return code


def user_error(exc: BaseException) -> BaseException | None:
    """The error a user can act on behind ``exc`` (Ray wraps what its workers raise): a setting,
    the model checkpoint, or storage that stayed unreachable; ``None`` for anything else (a bug:
    let its traceback show)."""
    from model import ConfigError as ModelConfigError
    from model import ModelNotFoundError, WeightError
    from pipeline.cluster import RayUnavailable
    from pipeline.retry import StorageUnavailable, find_cause

    return find_cause(exc, (ConfigError, StorageUnavailable, ModelConfigError, WeightError,
                            ModelNotFoundError, RayUnavailable))


def storage_setting_error(exc: BaseException) -> BaseException | None:
    """A storage error behind ``exc`` that a setting causes (no credentials, an endpoint that
    does not answer, rejected credentials), else ``None``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if storage_advice(exc) is not None:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def message_of(exc: BaseException) -> str:
    """The first line of ``exc``'s message (Ray appends advice and tracebacks below it)."""
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def resolve_job_model(config):
    """The checkpoint every actor will load, checked on the driver before Ray starts."""
    from pipeline.checkpoint import check_local_checkpoint
    from pipeline.model_ref import resolve_model

    check_local_checkpoint(config.model)
    return resolve_model(config.model, config.revision, config.device, config.dtype)


def cli_words(message: str) -> str:
    """A message written for Python users (``load_model('X')``) as the command line says it
    (``--model X``)."""
    return re.sub(r"load_model\('([^']*)'\)", r"--model \1", message)


def own_flags(message: str, module: str) -> str:
    """``message`` with flags the job ``module`` does not have replaced by its own names for the
    same thing (:data:`FLAG_EQUIVALENTS`)."""
    try:
        flags = importlib.import_module(module).build_parser()._option_string_actions
    except (ImportError, AttributeError):
        return message
    for theirs, ours in FLAG_EQUIVALENTS.items():
        if theirs not in flags and ours in flags:
            message = re.sub(rf"{re.escape(theirs)}(?![\w-])", ours, message)
    return message


INTERRUPTED = ("interrupted; what was written is kept: run the same command with --resume to "
               "complete it")


def run_job(body, argv: list[str], module: str) -> int:
    """Run a job's ``body()``; what a user can fix becomes one ``error:`` line and an exit code.

    A model that is neither local, reachable nor cached gives the line with the same command on the
    random test checkpoint (exit 1); setting mistakes exit 2; storage and model failures exit 1;
    Ctrl-C or SIGTERM exit 130 with a line saying how to resume; anything else is a bug and keeps
    its traceback. ``--verbose`` and ``--output-is-shared`` in ``argv`` set the process-wide
    :class:`~pipeline.cluster.JobOptions`.
    """
    from pipeline.cluster import JobOptions, job_console, set_job_options
    from pipeline.model_ref import ModelUnavailable

    set_job_options(JobOptions(verbose="--verbose" in argv,
                               output_is_shared="--output-is-shared" in argv))
    try:
        with job_console():
            body()
    except KeyboardInterrupt:
        return fail(INTERRUPTED, code=130)
    except ModelUnavailable as e:
        return fail(f"{e}; to try the job with the random test checkpoint (nonsense text): "
                    f"{with_test_model(argv, module)}", code=1)
    except Exception as e:  # noqa: BLE001 - sorted into user mistakes and bugs below
        known = user_error(e)
        if known is None:
            setting = storage_setting_error(e)
            if setting is not None:   # wherever it was raised: one line, the fix
                return fail(storage_error_line("storage", setting), code=2)
            raise
        return fail(own_flags(cli_words(message_of(known)), module),
                    code=2 if isinstance(known, ConfigError) else 1)
    return 0
