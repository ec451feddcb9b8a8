"""The pipeline with the model's time taken out (issue 21): the stand-in accelerator
(``pipeline/stages/standin.py``) in place of the forward.

* ``CeilingWindows``: the inference actor alone, in this process, on decoded batches (features
  precomputed, and with ``features_on="accelerator"`` the samples, the two actors' windows taking
  turns), with ``R = inf``: audio seconds per **CPU** second of the calling thread (at ``R = inf``
  the actor's work is all host CPU, so its CPU time is its cost; the wall-clock rate is kept beside
  it), over ``CEILING_WINDOWS`` windows, the median reported; its host time per audio second and
  per call, split into parts (CPU seconds too). CPU time still moves with what the machine's other
  cores do (they share caches and memory bandwidth with this one).
* ``actor_alone_busy``: the same actor at ``R``, called by ``CONCURRENT_CALLS`` threads as Ray's
  threaded actor calls it: held time ÷ wall time, what the overlap of host work and forwards gives
  when nothing else limits it (median of ``BUSY_REPEATS``).
* ``steady_figures``: RTFx and busy of a pipeline run's written rows in its steady state: from the
  end of the batch that ends ``STEADY_TRIM`` into the run's batches to the one ``1 - STEADY_TRIM``
  into them (actor start, model load, the first batches' wait and the last stragglers left out).
* ``MachineCpu``: the whole machine's CPU and stolen time over a pipeline run's steady window (the
  job's cores per 1000x, every process counted, and what the VM's host took).
* ``limiter``: which capacity bounds the busy fraction at ``R``, from measured capacities.

Every pipeline run at each ``R`` is repeated (``standin_repeats``) and medians reported; ``ratio_spreads``
says, for each figure that two benchmark runs are compared on, how far its repeats within this run
lie apart ((max - min) ÷ median).
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BUSY_RTFX = (1000.0, 4000.0, 8000.0)
HOST_PARTS = ("arrow_to_numpy", "packing", "to_device", "results", "results_to_arrow")
BUSY_GOAL = 0.95
CEILING_WINDOWS = 15          # windows of each actor-alone ceiling, the median reported
STEAL_LIMIT = 0.10            # a pipeline run whose steady window lost more to the VM's host is run again
# ... and at R = inf, where every core is busy and what the host takes comes straight off the
# throughput: runs at 6-7 % stolen came out 10-30 % under their neighbours at 0-2 % (ceiling with
# decoding 699 and 924 against 1,006-1,046 in one run)
STEAL_LIMIT_AT_INF = 0.05
CEILING_WINDOW_CPU_S = 0.4    # CPU seconds of actor calls per window, at least
BUSY_REPEATS = 3              # runs of the actor-alone busy at each R
STEADY_TRIM = 0.1             # share of a run's batches left out at each end of its steady state


def decoded_table(waves: list[np.ndarray], features_on: str = "cpu", numerics: str = "transformers") -> pa.Table:
    """Decode-stage output for ``waves`` (16 kHz), one segment each: features precomputed, or with
    ``features_on="accelerator"`` the samples with the frame counts the decoders compute."""
    from model import log_mel
    from model.features import num_feature_frames
    from pipeline.sinks.schema import decoded_schema

    rows = []
    for i, wave in enumerate(waves):
        row = {"id": f"utt{i:05d}", "source": f"utt{i:05d}.flac", "error": None,
               "duration_s": wave.size / 16000, "silent": False}
        if features_on == "accelerator":
            frames = num_feature_frames(wave.size, numerics=numerics)
            row.update(samples=np.ascontiguousarray(wave, np.float32).tobytes(), segment_samples=[wave.size],
                       num_frames=frames, segment_frames=[frames])
        else:
            f = np.ascontiguousarray(log_mel(wave, numerics=numerics), dtype=np.float32)
            row.update(features=f.tobytes(), num_frames=f.shape[0], segment_frames=[f.shape[0]])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=decoded_schema())


def _actor(checkpoint: Path, cfg, rtfx: float, features_on: str = "cpu"):
    from pipeline.model_ref import ModelSpec
    from pipeline.stages.inference import Transcriber

    return Transcriber(ModelSpec(str(checkpoint), device=cfg.device, dtype=cfg.dtype, numerics=cfg.numerics),
                       editing_steps=1, max_frames_per_pack=cfg.max_frames_per_pack, num_threads=1,
                       with_audio=False, simulate_rtfx=rtfx, features_on=features_on)


def _batches(table: pa.Table, budget: int) -> list[pa.Table]:
    from pipeline.stages.packing import rows_per_call

    rows = rows_per_call(budget)
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)]


def spread(values: list[float]) -> float | None:
    """(max - min) ÷ median of repeated measurements; ``None`` for fewer than two or a zero median."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2 or not np.median(vals):
        return None
    return float((max(vals) - min(vals)) / np.median(vals))


class CeilingWindows:
    """The actor alone at ``R = inf`` (module docstring), one actor per ``features_on`` key of
    ``tables`` (``"cpu"``: features precomputed; ``"accelerator"``: samples), measured in windows
    (:meth:`run`) that take turns so that each actor sees the same machine, and that a benchmark
    may split between the start and the end of its run so that a slow minute of the machine does
    not land on every window. :meth:`figures`: per key ``ceiling_rtfx_per_actor``
    (median over the windows of audio ÷ CPU seconds; each window passes over its table until
    ``window_cpu_s``), its runs, the wall-clock rate, and host CPU seconds per audio second and per
    call by part (``other``: what no part covers, the loop and Arrow slicing here). With
    ``features_on="accelerator"`` the ``features`` part is the batched log-mel on the actor's
    device, which on a GPU is device time, not host time.

    While windows run, the objects alive before them (this process's model, corpus and imports)
    are moved out of the garbage collector's generations (``gc.freeze``): a Ray actor's collections
    scan its own heap, not the benchmark's, and a full collection of the benchmark's heap landing in
    one window or one part moved them by 10-20 %."""

    def __init__(self, checkpoint: Path, tables: dict[str, pa.Table], cfg,
                 window_cpu_s: float = CEILING_WINDOW_CPU_S):
        self.window_cpu_s = window_cpu_s
        self.rounds = 0
        self.state = {}
        for features_on, table in tables.items():
            actor = _actor(checkpoint, cfg, math.inf, features_on)
            actor.clock = time.thread_time
            batches = _batches(table, cfg.max_frames_per_pack)
            actor(batches[0])  # first call: lazy imports, allocator
            actor(batches[0])
            self.state[features_on] = {"actor": actor, "batches": batches,
                                       "audio": float(np.sum(table.column("duration_s").to_numpy())),
                                       "parts": {}, "rates": [], "wall_rates": [], "cpu": 0.0,
                                       "audio_total": 0.0, "calls": 0}

    def run(self, windows: int) -> None:
        """``windows`` more windows of each actor, their order alternating from window to window."""
        import gc

        gc.collect()
        gc.freeze()
        try:
            for _ in range(windows):
                keys = list(self.state) if self.rounds % 2 == 0 else list(self.state)[::-1]
                for key in keys:
                    _ceiling_window(self.state[key], self.window_cpu_s)
                self.rounds += 1
        finally:
            gc.unfreeze()

    def figures(self) -> dict[str, dict]:
        out = {}
        for features_on, st in self.state.items():
            names = HOST_PARTS + (("features",) if features_on == "accelerator" else ())
            split = {k: st["parts"].get(k, 0.0) for k in names}
            split["other"] = max(0.0, st["cpu"] - sum(split.values()))
            out[features_on] = {
                "ceiling_rtfx_per_actor": float(np.median(st["rates"])),
                "ceiling_rtfx_per_actor_runs": st["rates"],
                "ceiling_rtfx_per_actor_wall": float(np.median(st["wall_rates"])),
                "actor_host_seconds_per_audio_second": st["cpu"] / st["audio_total"],
                "actor_host_seconds_per_audio_second_parts": {k: v / st["audio_total"] for k, v in split.items()},
                "actor_host_seconds_per_batch_parts": {k: v / st["calls"] for k, v in split.items()},
                "actor_rows_per_batch": st["batches"][0].num_rows,
                "actor_ceiling_calls": st["calls"],
                "features_wall_seconds_per_audio_second":
                    st["parts"].get("features_wall", 0.0) / st["audio_total"],
            }
        return out


def window_slots(windows: int, slots: int) -> list[int]:
    """``windows`` spread over ``slots`` places as evenly as they go, the earlier places first:
    ``window_slots(9, 4) == [3, 2, 2, 2]``."""
    return [windows // slots + (1 if i < windows % slots else 0) for i in range(slots)]


def _ceiling_window(st: dict, window_cpu_s: float) -> None:
    """One window of :class:`CeilingWindows` for one actor: passes over its batches until
    ``window_cpu_s`` CPU seconds of this thread (at least one pass), its figures added to ``st``."""
    actor = st["actor"]
    actor.parts.clear()
    cpu0, wall0, passes = time.thread_time(), time.perf_counter(), 0
    while passes < 1 or time.thread_time() - cpu0 < window_cpu_s:
        for batch in st["batches"]:
            actor(batch)
            st["calls"] += 1
        passes += 1
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    st["rates"].append(st["audio"] * passes / cpu)
    st["wall_rates"].append(st["audio"] * passes / wall)
    st["cpu"] += cpu
    st["audio_total"] += st["audio"] * passes
    for k, v in actor.parts.items():
        st["parts"][k] = st["parts"].get(k, 0.0) + v


def actor_alone_busy(checkpoint: Path, table: pa.Table, cfg, rtfx: float, passes: int = 2,
                     repeats: int = BUSY_REPEATS) -> list[float]:
    """Held ÷ wall seconds of the actor at ``rtfx`` fed by ``CONCURRENT_CALLS`` threads, ``repeats``
    times (one actor, loaded once)."""
    actor = _actor(checkpoint, cfg, rtfx)
    actor(_batches(table, cfg.max_frames_per_pack)[0])
    return [_alone_busy_once(actor, table, cfg, passes) for _ in range(repeats)]


def _alone_busy_once(actor, table: pa.Table, cfg, passes: int) -> float:
    from pipeline.stages.inference import CONCURRENT_CALLS

    work = _batches(table, cfg.max_frames_per_pack) * passes
    actor.parts.clear()
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                batch = work.pop()
            actor(batch)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT_CALLS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return actor.parts["held"] / (time.perf_counter() - start)


def steady_window(ends: np.ndarray, trim: float = STEADY_TRIM) -> tuple[float, float] | None:
    """(start, end) of a run's steady state from its batches' end times: from the end of the batch
    ``trim`` into the sorted distinct ends to the one ``1 - trim`` into them (at least the first
    and last batch are left out at the start); ``None`` with fewer than three batches."""
    distinct = np.unique(ends)
    if distinct.size < 3:
        return None
    lo = max(1, int(math.floor(trim * (distinct.size - 1))))
    hi = min(distinct.size - 1, int(math.ceil((1 - trim) * (distinct.size - 1))))
    if hi <= lo:
        lo, hi = 0, distinct.size - 1
    return float(distinct[lo]), float(distinct[hi])


def steady_figures(output: Path, trim: float = STEADY_TRIM) -> dict:
    """RTFx and busy of the written rows in the steady state (:func:`steady_window`): audio and held
    time of the batches that end inside the window, after its start, ÷ its length. With fewer than
    three batches, the actor's whole lifetime (from its start) is the span."""
    import pyarrow.parquet as pq

    columns = ["duration_s", "infer_seconds", "infer_batch_end", "infer_actor_start"]
    table = pa.concat_tables([pq.read_table(f, columns=columns) for f in sorted(output.rglob("*.parquet"))])
    ends = table.column("infer_batch_end").to_numpy()
    window = steady_window(ends, trim)
    if window is None:
        first, last = float(table.column("infer_actor_start").to_numpy().min()), float(ends.max())
        inside = np.ones(len(ends), bool)
    else:
        first, last = window
        inside = (ends > first) & (ends <= last)
    audio = float(np.nansum(table.column("duration_s").to_numpy()[inside]))
    held = float(np.nansum(table.column("infer_seconds").to_numpy(zero_copy_only=False)[inside].astype(float)))
    span = last - first
    return {"rtfx": audio / span if span > 0 else None, "busy": held / span if span > 0 else None,
            "batches": int(len(np.unique(ends))), "window": (first, last), "audio_seconds": audio}


class PeriodicSampler:
    """Calls :meth:`_sample` when its ``with`` block starts, every ``every`` seconds on a thread
    inside it, and when it ends (subclasses say what a sample is)."""

    def __init__(self, every: float = 0.1):
        self.every = every
        self._stop = threading.Event()

    def _sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class MachineCpu(PeriodicSampler):
    """The whole machine's CPU time, sampled every ``every`` seconds on a thread while in its
    ``with`` block (``psutil.cpu_times()``, summed over cores; stamps ``time.time()``, the clock of
    ``infer_batch_end``). :meth:`between` interpolates it over a window: the CPU seconds spent
    (user + nice + system + irq + softirq: every process's, Ray's own included) and the seconds the
    hypervisor gave other guests (``steal``), which wall-clock figures on a shared VM move with."""

    BUSY = ("user", "nice", "system", "irq", "softirq")

    def __init__(self, every: float = 0.1):
        super().__init__(every)
        self.samples = []

    def _sample(self) -> None:
        import psutil

        t = psutil.cpu_times()
        self.samples.append((time.time(), sum(getattr(t, k, 0.0) for k in self.BUSY), getattr(t, "steal", 0.0),
                             sum(t)))

    def between(self, start: float, end: float) -> dict:
        """``{"cpu_seconds", "steal_seconds", "steal_share"}`` from ``start`` to ``end`` (epoch
        seconds, inside the sampled span), each counter linearly interpolated between samples;
        ``steal_share``: stolen ÷ all CPU time the machine's cores had in the window."""
        stamps = np.array([x[0] for x in self.samples])
        at = {k: np.interp([start, end], stamps, [x[i] for x in self.samples])
              for i, k in ((1, "busy"), (2, "steal"), (3, "all"))}
        cpu, steal, total = (float(at[k][1] - at[k][0]) for k in ("busy", "steal", "all"))
        return {"cpu_seconds": cpu, "steal_seconds": steal, "steal_share": steal / total if total > 0 else None}


def limiter(rtfx: float, busy: float | None, decode_capacity: float | None, actor_capacity: float) -> str:
    """What bounds the busy fraction at ``rtfx``: ``none`` at ``BUSY_GOAL`` or more, else the
    smallest measured capacity under ``rtfx`` (``decode CPU``: decoders' cores × their RTFx per
    core; ``actor host time``: the actor-alone ceiling), else ``Ray transfer/scheduling``."""
    if busy is not None and busy >= BUSY_GOAL:
        return "none"
    caps = {"decode CPU": decode_capacity, "actor host time": actor_capacity}
    under = {k: v for k, v in caps.items() if v is not None and v < rtfx}
    if under:
        return min(under, key=under.get)
    return "Ray transfer/scheduling"


def cores_budget(costs: dict, host_s_per_audio_s: float, host_s_per_audio_s_features_on_accelerator: float,
                 at_rtfx: float = 4000.0) -> dict:
    """CPU cores per accelerator at ``at_rtfx`` per codec, all from CPU-time figures of one run:
    ``features_on_cpu`` = decoding + features of ``at_rtfx`` audio seconds per second
    (``cores_per_1000x``) + the actor's host time on features; ``features_on_accelerator`` =
    decoding alone (``decode_cores_per_1000x``) + the actor's host time on samples without the
    features themselves (the accelerator computes them)."""
    out = {}
    scale = at_rtfx / 1000.0
    for codec, cost in costs.items():
        if cost.get("cores_per_1000x") is None or cost.get("decode_cores_per_1000x") is None:
            continue
        out[codec] = {"features_on_cpu": scale * cost["cores_per_1000x"] + at_rtfx * host_s_per_audio_s,
                      "features_on_accelerator": scale * cost["decode_cores_per_1000x"]
                      + at_rtfx * host_s_per_audio_s_features_on_accelerator}
    return out


def _standin_run(tmp: Path, out: Path, checkpoint: Path, cfg, audio: float, name: str) -> dict:
    """One pipeline run at ``R = name``: its figures, with the machine's CPU seconds per audio
    second in its steady window (:class:`MachineCpu`: every process's, Ray's included) and the share
    of the machine's time the VM's host stole in that window."""
    from bench.pipeline_run import _run_pipeline

    with MachineCpu() as machine:
        wall, summary = _run_pipeline(tmp / "corpus", out, checkpoint, cfg, 1, simulate_rtfx=float(name))
    steady = steady_figures(out)
    cpu = machine.between(*steady["window"])
    return {"wall_seconds": wall, "rtfx": audio / wall,
            "accelerator_busy": summary["accelerator_busy"],
            "steady_rtfx": steady["rtfx"], "steady_busy": steady["busy"],
            "batches": steady["batches"],
            "machine_cpu_seconds_per_audio_second":
                cpu["cpu_seconds"] / steady["audio_seconds"] if steady["audio_seconds"] else None,
            "steal_share": cpu["steal_share"]}


def _pipeline_runs(tmp: Path, checkpoint: Path, cfg, audio: float, echo, reference=None,
                   runs_discarded: list | None = None, between_rounds=None) -> dict[str, dict]:
    """Each R (``inf`` first) ``cfg.standin_repeats`` times, the R's taking turns; every run's
    figures (:func:`_standin_run`); ``reference`` (:class:`bench.machine.ReferenceWork`) is sampled
    after each round of R's, then ``between_rounds(label)`` is called. A run in whose steady window the VM's host stole more than
    ``STEAL_LIMIT`` of the machine's time (``STEAL_LIMIT_AT_INF`` at ``R = inf``) is run again, at
    most ``cfg.steal_reruns`` times in all: its
    wall-clock figures measured the neighbours, not the pipeline (30-40 % stolen came out at half
    the throughput of the same run at 5 %). Those runs go to ``runs_discarded``, with why."""
    from bench.pipeline_run import _run_pipeline

    discarded = [] if runs_discarded is None else runs_discarded
    names = ["inf"] + [f"{r:g}" for r in cfg.simulate_rtfx]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    # one run left out first: the first job after Ray starts also starts its workers and fills the
    # OS caches (it came out a third slower than the next ones, 516 against 778-792 RTFx)
    echo("stand-in accelerator in the pipeline, warm-up run (not counted) ...")
    _run_pipeline(tmp / "corpus", tmp / "out-warm-up", checkpoint, cfg, 1, simulate_rtfx=float("inf"))
    left = cfg.steal_reruns
    for repeat in range(cfg.standin_repeats):
        for name in names:
            echo(f"stand-in accelerator in the pipeline, R = {name}, {cfg.scale_factor}x corpus, "
                 f"run {repeat + 1} of {cfg.standin_repeats} ...")
            out = tmp / f"out-{name}-{repeat}"
            run = _standin_run(tmp, out, checkpoint, cfg, audio, name)
            limit = STEAL_LIMIT_AT_INF if name == "inf" else STEAL_LIMIT
            while (run["steal_share"] or 0.0) > limit and left > 0:
                left -= 1
                discarded.append({**run, "simulated_rtfx": name, "repeat": repeat + 1})
                echo(f"  the VM's host stole {run['steal_share']:.0%} of the machine's time in that run "
                     f"(over {limit:.0%}): run again (reruns left: {left})")
                shutil.rmtree(out, ignore_errors=True)
                run = _standin_run(tmp, out, checkpoint, cfg, audio, name)
            runs[name].append(run)
        if reference is not None:
            reference.sample(f"after pipeline round {repeat + 1}")
        if between_rounds is not None:
            between_rounds(f"after pipeline round {repeat + 1}")
    return runs


def stand_in_slots(cfg) -> int:
    """How many times :func:`bench_standin` calls its ``spread_work``: before the pipeline runs,
    after each of their ``cfg.standin_repeats`` rounds and at the end with ``cfg.pipeline``; once
    without."""
    return cfg.standin_repeats + 2 if cfg.pipeline else 1


def _median(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r[key] is not None]
    return float(np.median(vals)) if vals else None


def bench_standin(model, waves: list[np.ndarray], cfg, costs=None, *, echo=print,
                  reference=None, spread_work=None) -> dict:
    """Every stand-in figure of the benchmark (module docstring), keys as design.md's Benchmark
    JSON names them; pipeline runs (Ray) only with ``cfg.pipeline``, on the ``scale_factor``x corpus
    with the actor on one core (it feeds an accelerator) and the decoders on the rest; the actor-alone
    ceiling's windows are then split between before Ray starts and after it stops
    (:func:`window_slots`), so that they sample the machine at both ends of the run.
    ``spread_work(label)`` runs the benchmark's other measurements that are spread over its run
    (:func:`stand_in_slots` of them: before the pipeline runs, after each round of them, and after
    the last windows). ``costs`` (:class:`bench.codecs.DecodeCosts`) gives the FLAC decode rate
    of the decode capacity, read at the end."""
    import tempfile

    import psutil

    from bench.corpus import write_checkpoint

    out: dict = {}
    spreads: dict[str, float | None] = {}
    numerics = model.numerics

    def work(label: str) -> None:
        if spread_work is not None:
            spread_work(label)
    runs, discarded = None, []
    with tempfile.TemporaryDirectory(prefix="nle-standin-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        table = decoded_table(waves, numerics=numerics)
        echo("stand-in accelerator: the actor alone, R = inf (CPU time), features precomputed and on "
             "the actor, windows taking turns" + (", before and after the pipeline runs" if cfg.pipeline else "")
             + " ...")
        ceiling_windows = CeilingWindows(checkpoint, {"cpu": table,
                                                      "accelerator": decoded_table(waves, "accelerator", numerics)},
                                         cfg, window_cpu_s=cfg.measure_seconds)
        slots = window_slots(CEILING_WINDOWS, 2 if cfg.pipeline else 1)
        echo("stand-in accelerator: the actor alone at each R, concurrent calls ...")
        alone = {}
        for r in cfg.simulate_rtfx:
            values = actor_alone_busy(checkpoint, table, cfg, r)
            alone[f"{r:g}"] = float(np.median(values))
            spreads[f"busy_actor_alone_at_rtfx.{r:g}"] = spread(values)
        out["busy_actor_alone_at_rtfx"] = alone
        if cfg.pipeline:
            import ray

            from bench.pipeline_run import quiet_ray_data, start_local_ray, write_corpus

            cores = int(cfg.threads or psutil.cpu_count() or 1)
            write_corpus(waves, tmp / "corpus", copies=cfg.scale_factor)
            audio = cfg.scale_factor * sum(w.size for w in waves) / 16000
            # half the windows before Ray starts, half once it has stopped: with Ray up (its workers'
            # start-up, idle workers polling) the windows came out up to a third lower on 2 cores
            ceiling_windows.run(slots[0])
            work("before the pipeline runs")
            started_ray = not ray.is_initialized()
            if started_ray:
                start_local_ray(max(cores, 2))
            try:
                with quiet_ray_data():
                    runs = _pipeline_runs(tmp, checkpoint, cfg, audio, echo, reference, discarded,
                                          between_rounds=work)
            finally:
                if started_ray:
                    ray.shutdown()
            ceiling_windows.run(slots[1])
        else:
            ceiling_windows.run(slots[0])
        work("after the stand-in's last windows")
    ceilings = ceiling_windows.figures()
    out.update(ceilings["cpu"])
    spreads["ceiling_rtfx_per_actor"] = spread(out["ceiling_rtfx_per_actor_runs"])
    acc = ceilings["accelerator"]
    features_share = acc["actor_host_seconds_per_audio_second_parts"]["features"]
    out["features_on_accelerator"] = {
        # the batched features by wall time (on CUDA the device's time, synchronised)
        "features_seconds_per_audio_second": acc["features_wall_seconds_per_audio_second"],
        "ceiling_rtfx_per_actor": acc["ceiling_rtfx_per_actor"],
        "ceiling_rtfx_per_actor_runs": acc["ceiling_rtfx_per_actor_runs"],
        # what the actor's host still does: everything but the features (the accelerator's work)
        "actor_host_seconds_per_audio_second": acc["actor_host_seconds_per_audio_second"] - features_share,
        "features_device": str(model.device),
        "actor_host_seconds_per_audio_second_parts": acc["actor_host_seconds_per_audio_second_parts"],
    }
    out["ratio_spreads"] = spreads
    if runs is None:
        return out
    flac = costs.results().get("flac", {}).get("cores_per_1000x") if costs is not None else None
    decode_capacity = (cores - 1) * 1000.0 / flac if flac else None
    rs = [k for k in runs if k != "inf"]
    out["ceiling_rtfx_per_actor_with_decode"] = _median(runs["inf"], "steady_rtfx")
    machine = _median(runs["inf"], "machine_cpu_seconds_per_audio_second")
    # the whole job's CPU (decoders, actor, driver, Ray), in cores per 1000x real time: a CPU-time
    # figure beside the wall-clock ceiling, which on a small shared VM moves with the VM's speed
    out["pipeline_cores_per_1000x"] = 1000.0 * machine if machine is not None else None
    out["steal_share_in_pipeline_runs"] = _median([r for k in runs for r in runs[k]], "steal_share")
    out["busy_at_rtfx"] = {k: _median(runs[k], "accelerator_busy") for k in rs}
    out["busy_steady_at_rtfx"] = {k: _median(runs[k], "steady_busy") for k in rs}
    out["busy_limited_by"] = {k: limiter(float(k), out["busy_steady_at_rtfx"][k], decode_capacity,
                                         out["ceiling_rtfx_per_actor"]) for k in rs}
    out["decode_capacity_rtfx"] = decode_capacity
    out["standin_runs"] = runs
    out["standin_runs_discarded"] = discarded
    spreads["ceiling_rtfx_per_actor_with_decode"] = spread([r["steady_rtfx"] for r in runs["inf"]])
    spreads["pipeline_cores_per_1000x"] = spread([r["machine_cpu_seconds_per_audio_second"] for r in runs["inf"]])
    for k in rs:
        spreads[f"busy_at_rtfx.{k}"] = spread([r["accelerator_busy"] for r in runs[k]])
        spreads[f"busy_steady_at_rtfx.{k}"] = spread([r["steady_busy"] for r in runs[k]])
    return out
