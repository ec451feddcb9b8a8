"""The pipeline with the model's time taken out (issue 21): the stand-in accelerator
(``pipeline/stages/standin.py``) in place of the forward.

* ``actor_ceiling``: the inference actor alone, in this process, on decoded batches whose features
  are precomputed, with ``R = inf``: RTFx per actor (audio seconds ÷ wall seconds of back-to-back
  calls) and its host time per audio second and per call, split into parts.
* ``actor_alone_busy``: the same actor at ``R``, called by ``CONCURRENT_CALLS`` threads as Ray's
  threaded actor calls it: held time ÷ wall time, what the overlap of host work and forwards gives
  when nothing else limits it.
* ``steady_figures``: RTFx and busy of a pipeline run's written rows between its first and last
  batch (the actor's steady state, load and ramp left out).
* ``limiter``: which capacity bounds the busy fraction at ``R``, from measured capacities.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BUSY_RTFX = (1000.0, 4000.0, 8000.0)
HOST_PARTS = ("arrow_to_numpy", "packing", "to_device", "results", "results_to_arrow")
BUSY_GOAL = 0.95


def decoded_table(waves: list[np.ndarray]) -> pa.Table:
    """Decode-stage output for ``waves`` (16 kHz): features precomputed, one segment each."""
    from model import log_mel
    from pipeline.sinks.schema import decoded_schema

    rows = []
    for i, wave in enumerate(waves):
        f = np.ascontiguousarray(log_mel(wave), dtype=np.float32)
        rows.append({"id": f"utt{i:05d}", "source": f"utt{i:05d}.flac", "error": None,
                     "duration_s": wave.size / 16000, "features": f.tobytes(),
                     "num_frames": f.shape[0], "segment_frames": [f.shape[0]], "silent": False})
    return pa.Table.from_pylist(rows, schema=decoded_schema())


def _actor(checkpoint: Path, cfg, rtfx: float):
    from pipeline.model_ref import ModelSpec
    from pipeline.stages.inference import Transcriber

    return Transcriber(ModelSpec(str(checkpoint), device=cfg.device, dtype=cfg.dtype), editing_steps=1,
                       max_frames_per_pack=cfg.max_frames_per_pack, num_threads=1, with_audio=False,
                       simulate_rtfx=rtfx)


def _batches(table: pa.Table, budget: int) -> list[pa.Table]:
    from pipeline.stages.packing import rows_per_call

    rows = rows_per_call(budget)
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)]


def actor_ceiling(checkpoint: Path, table: pa.Table, cfg, min_seconds: float = 1.0) -> dict:
    """RTFx of the actor alone at ``R = inf`` (passes over ``table`` for at least ``min_seconds``
    and 3 passes) and its host seconds per audio second and per call, by part (``other``: what no
    part covers: Ray Data's batch slicing here, the loop)."""
    actor = _actor(checkpoint, cfg, math.inf)
    batches = _batches(table, cfg.max_frames_per_pack)
    audio = float(np.sum(table.column("duration_s").to_numpy()))
    actor(batches[0])  # first call: lazy imports, allocator
    actor.parts.clear()
    passes, calls, start = 0, 0, time.perf_counter()
    while passes < 3 or time.perf_counter() - start < min_seconds:
        for batch in batches:
            actor(batch)
            calls += 1
        passes += 1
    wall = time.perf_counter() - start
    parts = dict(actor.parts)
    split = {k: parts.get(k, 0.0) for k in HOST_PARTS}
    split["other"] = max(0.0, wall - sum(split.values()) - parts.get("held", 0.0))
    total_audio = audio * passes
    return {
        "ceiling_rtfx_per_actor": total_audio / wall,
        "actor_host_seconds_per_audio_second": wall / total_audio,
        "actor_host_seconds_per_audio_second_parts": {k: v / total_audio for k, v in split.items()},
        "actor_host_seconds_per_batch_parts": {k: v / calls for k, v in split.items()},
        "actor_rows_per_batch": batches[0].num_rows,
        "actor_ceiling_passes": passes,
    }


def actor_alone_busy(checkpoint: Path, table: pa.Table, cfg, rtfx: float, passes: int = 2) -> float:
    """Held ÷ wall seconds of the actor at ``rtfx`` fed by ``CONCURRENT_CALLS`` threads."""
    from pipeline.stages.inference import CONCURRENT_CALLS

    actor = _actor(checkpoint, cfg, rtfx)
    work = _batches(table, cfg.max_frames_per_pack) * passes
    actor(work[0])
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


def steady_figures(output: Path) -> dict:
    """RTFx and busy between the first and the last batch end of the written rows (batches are
    told apart by their end time): audio and held time of the batches after the first ÷ that span.
    With one batch only, the actor's whole lifetime (from its start) is the span."""
    import pyarrow.parquet as pq

    columns = ["duration_s", "infer_seconds", "infer_batch_end", "infer_actor_start"]
    table = pa.concat_tables([pq.read_table(f, columns=columns) for f in sorted(output.rglob("*.parquet"))])
    ends = table.column("infer_batch_end").to_numpy()
    first, last = float(ends.min()), float(ends.max())
    later = ends > first
    if not later.any():
        first = float(table.column("infer_actor_start").to_numpy().min())
        later = np.ones(len(ends), bool)
    audio = float(np.nansum(table.column("duration_s").to_numpy()[later]))
    held = float(np.nansum(table.column("infer_seconds").to_numpy(zero_copy_only=False)[later].astype(float)))
    span = last - first
    return {"rtfx": audio / span if span > 0 else None, "busy": held / span if span > 0 else None,
            "batches": int(len(np.unique(ends)))}


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


def cores_budget(costs: dict, host_s_per_audio_s: float, at_rtfx: float = 4000.0) -> dict:
    """CPU cores per accelerator at ``at_rtfx`` per codec: decoding (+ features on the CPU) of
    ``at_rtfx`` audio seconds per second, plus the actor's own host time for them."""
    out = {}
    actor = at_rtfx * host_s_per_audio_s
    for codec, cost in costs.items():
        if cost.get("cores_per_1000x") is None or cost.get("decode_cores_per_1000x") is None:
            continue
        scale = at_rtfx / 1000.0
        out[codec] = {"features_on_cpu": scale * cost["cores_per_1000x"] + actor,
                      "features_on_accelerator": scale * cost["decode_cores_per_1000x"] + actor}
    return out


def bench_standin(model, waves: list[np.ndarray], cfg, costs: dict | None, *, echo=print) -> dict:
    """Every stand-in figure of the benchmark (module docstring), keys as design.md's Benchmark
    JSON names them; pipeline runs (Ray) only with ``cfg.pipeline``, on the ``scale_factor``x corpus
    with the actor on one core (it feeds an accelerator) and the decoders on the rest."""
    import tempfile

    import psutil

    from bench.corpus import write_checkpoint

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="nle-standin-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        table = decoded_table(waves)
        echo("stand-in accelerator: the actor alone, R = inf ...")
        out.update(actor_ceiling(checkpoint, table, cfg))
        echo("stand-in accelerator: the actor alone at each R, concurrent calls ...")
        out["busy_actor_alone_at_rtfx"] = {f"{r:g}": actor_alone_busy(checkpoint, table, cfg, r)
                                           for r in cfg.simulate_rtfx}
        if not cfg.pipeline:
            return out
        import ray

        from bench.pipeline_run import _run_pipeline, quiet_ray_data, write_corpus

        cores = int(cfg.threads or psutil.cpu_count() or 1)
        write_corpus(waves, tmp / "corpus", copies=cfg.scale_factor)
        audio = cfg.scale_factor * sum(w.size for w in waves) / 16000
        started_ray = not ray.is_initialized()
        if started_ray:
            ray.init(address="local", num_cpus=max(cores, 2), include_dashboard=False, log_to_driver=False)
        runs: dict[str, dict] = {}
        try:
            with quiet_ray_data():
                for rtfx in (math.inf, *cfg.simulate_rtfx):
                    name = "inf" if math.isinf(rtfx) else f"{rtfx:g}"
                    echo(f"stand-in accelerator in the pipeline, R = {name}, {cfg.scale_factor}x corpus ...")
                    wall, summary = _run_pipeline(tmp / "corpus", tmp / f"out-{name}", checkpoint, cfg, 1,
                                                  simulate_rtfx=rtfx)
                    steady = steady_figures(tmp / f"out-{name}")
                    runs[name] = {"wall_seconds": wall, "rtfx": audio / wall,
                                  "accelerator_busy": summary["accelerator_busy"],
                                  "steady_rtfx": steady["rtfx"], "steady_busy": steady["busy"],
                                  "batches": steady["batches"]}
        finally:
            if started_ray:
                ray.shutdown()
    flac = (costs or {}).get("flac", {}).get("cores_per_1000x")
    decode_capacity = (cores - 1) * 1000.0 / flac if flac else None
    out["ceiling_rtfx_per_actor_with_decode"] = runs["inf"]["steady_rtfx"]
    out["busy_at_rtfx"] = {k: runs[k]["accelerator_busy"] for k in runs if k != "inf"}
    out["busy_steady_at_rtfx"] = {k: runs[k]["steady_busy"] for k in runs if k != "inf"}
    out["busy_limited_by"] = {k: limiter(float(k), runs[k]["steady_busy"], decode_capacity,
                                         out["ceiling_rtfx_per_actor"]) for k in runs if k != "inf"}
    out["decode_capacity_rtfx"] = decode_capacity
    out["standin_runs"] = runs
    return out
