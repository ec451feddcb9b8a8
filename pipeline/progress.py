"""What a running job says besides Ray's own progress: a ``note:`` when nothing moves, and, in a
terminal too narrow for Ray's progress bars, plain progress lines instead of wrapped bars.

Both read Ray Data's per-operator counters (completed tasks, queued input blocks), which the
streaming executor reports to its stats actor every few seconds; only the driver polls them, in
one background thread. Without that actor (another Ray version) the watch stays silent.

* Stall: no operator completes a task for :func:`stall_seconds` (``$NLE_STALL_SECONDS``,
  default 180; Ray reports its counters every 5 s, so values below ~10 s can see a stall where
  there is none) → one ``note:`` line naming the stage that waits, what it asks Ray for, and
  what the cluster has free. One note per stall; progress resets it.
* Narrow terminal (:func:`progress_mode`): on a terminal narrower than :data:`BAR_COLUMNS`,
  Ray's bars (one per stage, wider than the screen) wrap into hundreds of lines; there Ray's bars
  are switched off and a ``progress:`` line (stage done/total, cut to the width) is printed every
  :data:`LINE_INTERVAL_S` seconds when something moved.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time

STALL_ENV = "NLE_STALL_SECONDS"
DEFAULT_STALL_S = 180.0
BAR_COLUMNS = 120          # Ray's per-stage bars need about this many columns to stay one line
LINE_INTERVAL_S = 10.0     # progress lines, as often as Ray's own log-line fallback
STAGE_NAMES = (("decode_batch", "decode"), ("Transcriber", "inference"),
               ("score_batch", "score"), ("Write", "write"), ("Read", "read"),
               ("select_items", "select"), ("prefetch_parquet", "fetch"),
               ("user_items", "rows"), ("StreamingRepartition", "cut"))


def stall_seconds(env=None) -> float:
    """Seconds without progress before the ``note:`` (``$NLE_STALL_SECONDS``, default 180)."""
    from pipeline.config import ConfigError

    text = (os.environ if env is None else env).get(STALL_ENV)
    if not text:
        return DEFAULT_STALL_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"${STALL_ENV} must be a number of seconds > 0, got {text!r}")
    return value


def progress_mode(isatty: bool, columns: int) -> str:
    """``"log"`` off a terminal (Ray Data logs a line per stage itself), ``"bars"`` on a
    terminal of at least :data:`BAR_COLUMNS` columns, else ``"lines"`` (ours)."""
    if not isatty:
        return "log"
    return "bars" if columns >= BAR_COLUMNS else "lines"


def console_progress_mode() -> str:
    """:func:`progress_mode` of this process's stdout (Ray Data decides on stdout too)."""
    return progress_mode(sys.stdout.isatty(), shutil.get_terminal_size((80, 24)).columns)


def short_name(name: str) -> str:
    """A stage's short name: ``MapBatches(decode_batch)`` → ``decode``; unknown names as is."""
    parts = []
    for piece in name.split("->"):
        parts.append(next((short for key, short in STAGE_NAMES if key in piece), piece))
    return "+".join(parts)


def progress_line(operators: list[dict], width: int) -> str:
    """``progress: decode 3/6 · inference 0/6 · write 0/?`` (completed tasks / Ray's estimate of
    the total), cut to ``width`` characters."""
    parts = [f"{short_name(op['name'])} {op.get('progress', 0)}/{op.get('total') or '?'}"
             for op in operators]
    line = "progress: " + " · ".join(parts)
    return line if len(line) <= width else line[:max(10, width - 1)] + "…"


def waiting_stage(operators: list[dict], requests: dict[str, dict] | None = None,
                  free: dict | None = None) -> dict | None:
    """The stage a stalled run waits in: the first unfinished one whose resource request
    (``requests``: a name fragment → ``{"CPU": n, "GPU": n}`` per task or actor) the ``free``
    resources cannot meet; else the first unfinished one with queued input blocks; else the
    first unfinished one."""
    unfinished = [op for op in operators if op.get("state") != "FINISHED"]
    free = free or {}
    for op in unfinished:
        for key, request in (requests or {}).items():
            if key in op["name"] and any(free.get(r, 0) < n for r, n in request.items() if n):
                return op
    queued = [op for op in unfinished if op.get("queued_blocks", 0) > 0]
    return (queued or unfinished or [None])[0]


def stall_note(op: dict, seconds: float, needs: str | None, free: dict, total: dict) -> str:
    """The one ``note:`` line of a stall."""
    asks = f" for {needs}" if needs else ""
    queued = op.get("queued_blocks", 0)
    return (f"note: no progress for {seconds:.0f} s: stage {op['name']} waits{asks} "
            f"({op.get('progress', 0)} tasks done, {queued} input blocks queued); free now "
            f"{free.get('CPU', 0):g} of {total.get('CPU', 0):g} CPU, {free.get('GPU', 0):g} of "
            f"{total.get('GPU', 0):g} GPU (other work on the cluster may hold the rest: "
            "`ray status`); lower --actors/--cpus-per-actor or free the cluster")


def _running_operators() -> list[dict] | None:
    """Operators (in plan order) of this driver's most recent running dataset, or ``None``."""
    import ray
    from ray.data._internal.stats import STATS_ACTOR_NAME, STATS_ACTOR_NAMESPACE

    actor = ray.get_actor(STATS_ACTOR_NAME, namespace=STATS_ACTOR_NAMESPACE)
    datasets = ray.get(actor.get_datasets.remote(ray.get_runtime_context().get_job_id()),
                       timeout=10)
    running = [d for d in datasets.values() if d.get("state") == "RUNNING"]
    if not running:
        return None
    latest = max(running, key=lambda d: d.get("start_time") or 0)
    return list(latest.get("operators", {}).values())


class ProgressWatch:
    """The background thread of the module docstring; use as a context manager."""

    def __init__(self, echo=print, *, needs: dict[str, str] | None = None,
                 requests: dict[str, dict] | None = None,
                 stall_s: float | None = None, lines: bool | None = None,
                 poll_s: float | None = None):
        self.echo = echo
        self.needs = needs or {}
        self.requests = requests or {}
        self.stall_s = stall_seconds() if stall_s is None else stall_s
        self.lines = (console_progress_mode() == "lines") if lines is None else lines
        self.poll_s = poll_s or min(2.0, self.stall_s / 3)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nle-progress", daemon=True)

    def __enter__(self) -> "ProgressWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _needs_of(self, name: str) -> str | None:
        return next((v for k, v in self.needs.items() if k in name), None)

    def _run(self) -> None:
        import ray

        last_signature, last_change, noted, last_line = None, time.monotonic(), False, 0.0
        printed = None
        while not self.stop.wait(self.poll_s):
            try:
                operators = _running_operators()
            except Exception:  # noqa: BLE001 - no stats actor yet, or another Ray: stay silent
                continue
            now = time.monotonic()
            if operators is None:
                last_signature, last_change, noted = None, now, False
                continue
            signature = tuple((op.get("name"), op.get("progress", 0)) for op in operators)
            if signature != last_signature:
                last_signature, last_change, noted = signature, now, False
            elif not noted and now - last_change >= self.stall_s:
                free = ray.available_resources()
                op = waiting_stage(operators, self.requests, free)
                if op is not None:
                    self.echo(stall_note(op, now - last_change, self._needs_of(op["name"]),
                                         free, ray.cluster_resources()))
                    noted = True
            if self.lines and now - last_line >= LINE_INTERVAL_S and signature != printed:
                self.echo(progress_line(operators, shutil.get_terminal_size((80, 24)).columns))
                printed, last_line = signature, now
