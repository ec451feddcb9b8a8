"""Benchmark parts that run the Ray pipeline: overhead over the stages alone, and scaling.

The corpus is written as FLAC files; the random model as a checkpoint folder the actors load. The
scaled corpus is the same clips copied ``scale_factor`` times under new names, so its work is
exactly ``scale_factor`` times the small one's.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow.parquet as pq
import soundfile as sf

from bench.corpus import SAMPLE_RATE, write_checkpoint


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


def time_stages_alone(model, paths: list[Path], budget: int, out: Path) -> dict:
    """Decode+features, packed inference and Parquet writing, each timed on its own in this process."""
    import pyarrow as pa

    from model import log_mel

    from bench.batches import packed_batches
    from pipeline.stages.decode import DecodeSettings
    from pipeline.stages.prepare import decode_row

    settings = DecodeSettings(max_duration_s=3600.0, max_segment_s=40.0, silence_dbfs=-60.0)
    start = time.perf_counter()
    rows = [decode_row({"id": p.stem, "source": str(p)}, p.read_bytes(), None, settings, log_mel) for p in paths]
    t_decode = time.perf_counter() - start
    feats = [np.frombuffer(r["features"], dtype=np.float32).reshape(-1, 160) for r in rows if r["features"]]
    start = time.perf_counter()
    ids = packed_batches(model, feats, budget)
    t_infer = time.perf_counter() - start
    start = time.perf_counter()
    table = pa.table({"id": [r["id"] for r in rows], "token_ids": pa.array(ids, pa.list_(pa.int32()))})
    pq.write_table(table, out)
    t_write = time.perf_counter() - start
    return {"decode": t_decode, "inference": t_infer, "write": t_write}


def _run_pipeline(inputs: Path, output: Path, checkpoint: Path, cfg, threads: int) -> float:
    from pipeline.config import TranscribeConfig
    from pipeline.run import run_transcribe

    config = TranscribeConfig(inputs=(str(inputs),), output=str(output), model=str(checkpoint),
                              device=cfg.device, dtype=cfg.dtype, actors=(1, 1), cpus_per_actor=float(threads),
                              gpus_per_actor=1.0 if cfg.device.startswith("cuda") else 0.0,
                              max_frames_per_pack=cfg.max_frames_per_pack, normalizer="none")
    start = time.perf_counter()
    summary = run_transcribe(config, echo=lambda *a, **k: None)
    wall = time.perf_counter() - start
    if summary["errors"]:
        raise RuntimeError(f"benchmark pipeline run had {summary['errors']} error rows")
    return wall


def bench_pipeline(model, waves: list[np.ndarray], cfg, *, echo=print) -> dict:
    import ray

    threads = int(cfg.threads or psutil.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="nle-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        small = write_corpus(waves, tmp / "corpus1")
        write_corpus(waves, tmp / "corpus10", copies=cfg.scale_factor)
        # One logical CPU beyond the actor's threads for the decoders (decoding is ~1% of the work).
        started_ray = not ray.is_initialized()
        if started_ray:
            ray.init(address="local", num_cpus=threads + 1, include_dashboard=False, log_to_driver=False)
        echo("stages alone ...")
        stages = time_stages_alone(model, small, cfg.max_frames_per_pack, tmp / "alone.parquet")
        echo("pipeline, 1x corpus ...")
        _run_pipeline(tmp / "corpus1", tmp / "warm", checkpoint, cfg, threads)  # warm Ray workers and caches
        with PeakRss() as rss1:
            t1 = _run_pipeline(tmp / "corpus1", tmp / "out1", checkpoint, cfg, threads)
        echo(f"pipeline, {cfg.scale_factor}x corpus ...")
        with PeakRss() as rss10:
            t10 = _run_pipeline(tmp / "corpus10", tmp / "out10", checkpoint, cfg, threads)
        if started_ray:
            ray.shutdown()
    stage_sum = sum(stages.values())
    return {
        "stage_seconds": stages,
        "pipeline_seconds_1x": t1,
        "pipeline_seconds_scaled": t10,
        # Overhead of the pipeline over its stages run alone, on the scaled corpus (stage work is exactly
        # scale_factor times the 1x stages: the same clips) and on the 1x corpus (fixed costs dominate).
        "pipeline_overhead": t10 / (cfg.scale_factor * stage_sum) - 1.0,
        "pipeline_overhead_1x": t1 / stage_sum - 1.0,
        "scaling_time_ratio": t10 / t1,
        "scaling_rss_ratio": rss10.peak / rss1.peak,
        "peak_rss_bytes_1x": rss1.peak,
        "peak_rss_bytes_scaled": rss10.peak,
    }
