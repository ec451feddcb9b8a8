"""Benchmark parts that run the Ray pipeline: the accelerator busy fraction, and scaling.

The corpus is written as FLAC files; the random model as a checkpoint folder the actors load. The
scaled corpus is the same clips copied ``scale_factor`` times under new names, so its work is
exactly ``scale_factor`` times the small one's.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from bench.corpus import SAMPLE_RATE, write_checkpoint
from pipeline.cluster import worker_pool_config


class PeakRss:
    """Samples the summed RSS of this process and all its descendants (Ray's raylet and workers)."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s, self.peak = interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


@contextmanager
def quiet_ray_data():
    """The benchmark prints its own lines: Ray Data's notices and progress stay in Ray's logs
    while it runs (logger level and progress bars restored after)."""
    import ray.data

    logger, context = logging.getLogger("ray.data"), ray.data.DataContext.get_current()
    level, bars = logger.level, context.enable_progress_bars
    logger.setLevel(logging.WARNING)
    context.enable_progress_bars = False
    try:
        yield
    finally:
        logger.setLevel(level)
        context.enable_progress_bars = bars


def start_local_ray(cpus: int, *, jobs_worker_pool: bool = True) -> None:
    """A private local Ray instance of ``cpus`` logical CPUs for a benchmark (no dashboard, workers'
    output in Ray's logs), keeping idle workers as the jobs' own local instance does
    (:func:`pipeline.cluster.worker_pool_config`), or with ``jobs_worker_pool=False`` as Ray's
    default does."""
    import ray

    pool = {"_system_config": worker_pool_config(cpus)} if jobs_worker_pool else {}
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, **pool)


def write_corpus(waves: list[np.ndarray], folder: Path, copies: int = 1) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in range(copies):
        for i, wave in enumerate(waves):
            path = folder / f"c{c:02d}" / f"utt{i:04d}.flac"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, wave, SAMPLE_RATE, subtype="PCM_16")
            paths.append(path)
    return paths


def _run_pipeline(inputs: Path, output: Path, checkpoint: Path, cfg, actor_cores: int,
                  **settings) -> tuple[float, dict]:
    """One transcribe job (``settings``: further ``TranscribeConfig`` fields, e.g. the stand-in's
    ``simulate_rtfx``); returns its wall seconds and its summary."""
    from pipeline.config import TranscribeConfig
    from pipeline.run import run_transcribe

    config = TranscribeConfig(inputs=(str(inputs),), output=str(output), model=str(checkpoint),
                              device=cfg.device, dtype=cfg.dtype, actors=(1, 1),
                              cpus_per_actor=float(actor_cores),
                              gpus_per_actor=1.0 if cfg.device.startswith("cuda") else 0.0,
                              max_frames_per_pack=cfg.max_frames_per_pack, normalizer="none",
                              numerics=cfg.numerics, **settings)
    start = time.perf_counter()
    summary = run_transcribe(config, echo=lambda *a, **k: None)
    wall = time.perf_counter() - start
    if summary["errors"]:
        raise RuntimeError(f"benchmark pipeline run had {summary['errors']} error rows")
    return wall, summary


def core_split(cores: int, device: str) -> int:
    """Cores the inference actor gets; the decoders get the rest. On CPU the actor computes with its
    cores, so it gets half (1 of 2 here), as a GPU node's accelerator is separate from the decoders'
    CPUs; on CUDA it needs one core to feed the GPU."""
    if device.startswith("cuda"):
        return 1
    return max(1, cores // 2)


def bench_pipeline(model, waves: list[np.ndarray], cfg, *, echo=print) -> dict:
    """The transcribe job on the 1x corpus and on ``scale_factor``x, the latter ``repeats`` times:
    wall time, peak RSS, and the accelerator busy fraction with the actor on its own cores."""
    import ray

    cores = int(cfg.threads or psutil.cpu_count() or 1)
    actor_cores = core_split(cores, cfg.device)
    with tempfile.TemporaryDirectory(prefix="nle-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        write_corpus(waves, tmp / "corpus1")
        write_corpus(waves, tmp / "corpus10", copies=cfg.scale_factor)
        started_ray = not ray.is_initialized()
        if started_ray:
            # Logical CPUs = cores: the actor's share is its own, the decoders get the rest.
            start_local_ray(max(cores, actor_cores + 1))
        with quiet_ray_data():
            echo(f"pipeline, 1x corpus (actor: {actor_cores} of {cores} cores) ...")
            _run_pipeline(tmp / "corpus1", tmp / "warm", checkpoint, cfg, actor_cores)  # warm Ray workers and caches
            with PeakRss() as rss1:
                t1, summary1 = _run_pipeline(tmp / "corpus1", tmp / "out1", checkpoint, cfg, actor_cores)
            scaled, rtfx = [], None
            for r in range(cfg.repeats):
                echo(f"pipeline, {cfg.scale_factor}x corpus, run {r + 1} of {cfg.repeats} ...")
                with PeakRss() as rss10:
                    t10, summary10 = _run_pipeline(tmp / "corpus10", tmp / f"out10-{r}", checkpoint, cfg,
                                                   actor_cores)
                scaled.append((t10, rss10.peak, summary10["accelerator_busy"]))
                rtfx = rtfx if r else summary10["rtfx"]
        if started_ray:
            ray.shutdown()
    t10, peak10, busy = scaled[0]
    busy_runs = [b for _, _, b in scaled]
    time_ratios = [t / t1 for t, _, _ in scaled]
    return {
        "actor_cores": actor_cores,
        "cores": cores,
        "pipeline_seconds_1x": t1,
        "pipeline_seconds_scaled": t10,
        "pipeline_rtfx": rtfx,  # audio seconds / wall seconds of the whole job, 10x corpus
        "accelerator_busy": busy,
        "accelerator_busy_1x": summary1["accelerator_busy"],
        "accelerator_busy_runs": busy_runs,
        "accelerator_busy_spread": max(busy_runs) - min(busy_runs),
        "scaling_time_ratio": t10 / t1,
        "scaling_time_ratio_runs": time_ratios,
        "scaling_rss_ratio": peak10 / rss1.peak,
        "peak_rss_bytes_1x": rss1.peak,
        "peak_rss_bytes_scaled": peak10,
    }
