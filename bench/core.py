"""``jobs.benchmark``: packed vs padded model throughput, pipeline overhead, scaling, feature speed.

Everything runs in one process on the same machine, weights, and audio, so the ratios mean something.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from model import log_mel, random_model

from bench.corpus import SAMPLE_RATE, calibrate_drafts, corpus_durations, corpus_waveforms, size_config
from bench.batches import _sync, packed_batches, padded_batch
from bench.cost import packed_waste, padded_waste


MODEL_REPEATS = 5  # timings of each model-only way, the median reported
# pass pairs of the batched vs per-utterance features CPU, at least: single pairs spread 0.93-1.36
# in one run, and the median of 10-11 moved 10.8 % between two runs
FEATURE_PAIRS = 21
# passes of each codec in each slot of the decode costs (bench/codecs.py DecodeCosts), at least
CODEC_PASSES_PER_SLOT = 2


@dataclass(frozen=True)
class BenchmarkConfig:
    size: str = "small"
    count: int = 48
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    padded_batch_size: int = 8
    max_frames_per_pack: int = 8000
    threads: int = 0  # 0: all cores
    pipeline: bool = True
    scale_factor: int = 10
    warmup: int = 1
    repeats: int = 2  # runs of the scaled corpus, for the spread of its figures
    codecs: bool = True
    codec_seconds: float = 3.0  # CPU seconds of decoding per codec, the first slot's share sets the passes (bench/codecs.py)
    find_max_pack: bool = False  # CUDA only: search the largest --max-frames-per-pack that fits
    scale_rows: int = 0  # 0: no scale run (bench/scale.py)
    scale_corpus_mb: float = 300.0
    timestamps: str = "none"  # "word": also time the forced alignment (bench/alignment.py)
    numerics: str | None = None  # the profile of the main run (None: the random checkpoint's, transformers)
    compare_numerics: bool = True  # time both profiles side by side (bench/numerics_cost.py)
    simulate_rtfx: tuple[float, ...] = (1000.0, 4000.0, 8000.0)  # the stand-in's R for busy_at_rtfx
    null_model: bool = False  # only the stand-in parts: the model's own timings and runs are skipped
    measure_seconds: float = 0.4  # CPU s per window of the actor ceiling; feature timings last 5x this
    standin_repeats: int = 5  # runs of the stand-in pipeline at each R, medians reported
    steal_reruns: int = 6  # stand-in pipeline runs run again at most for the VM's host stealing > 10 % (5 % at R = inf)
    model_repeats: int = MODEL_REPEATS  # timings of each model-only way, the median reported


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - start


def bench_model(model, feats: list[np.ndarray], audio_s: float, cfg: BenchmarkConfig) -> dict:
    """Packed vs padded on the same features: each timed ``cfg.model_repeats`` times, the two ways
    alternating, the median of each reported (one pass of a small corpus takes a second or two,
    where a single timing moves by 10-20 % between runs)."""
    device = model.device
    warm = feats[: max(1, cfg.warmup)]
    packed_batches(model, warm, cfg.max_frames_per_pack)
    padded_batch(model, warm)

    def padded_all() -> list:
        return [ids for i in range(0, len(feats), cfg.padded_batch_size)
                for ids in padded_batch(model, feats[i:i + cfg.padded_batch_size])]

    packed_times, padded_times = [], []
    for _ in range(cfg.model_repeats):
        packed_ids, t = _timed(lambda: packed_batches(model, feats, cfg.max_frames_per_pack), device)
        packed_times.append(t)
        padded_ids, t = _timed(padded_all, device)
        padded_times.append(t)
    t_packed, t_padded = float(np.median(packed_times)), float(np.median(padded_times))
    lengths = [f.shape[0] for f in feats]
    text_lengths = [max(2 * len(ids) + 1, model.min_edit_length) for ids in packed_ids]
    # The padded baseline computes the encoder over padding, so its drafts may differ; count agreement.
    same = sum(a == b for a, b in zip(packed_ids, padded_ids))
    return {
        "packed_seconds": t_packed, "padded_seconds": t_padded,
        "packed_seconds_runs": packed_times, "padded_seconds_runs": padded_times,
        "packed_rtfx": audio_s / t_packed, "padded_rtfx": audio_s / t_padded,
        "packed_vs_padded_speedup": t_padded / t_packed,
        "padding_waste_packed": packed_waste(model.config, lengths, text_lengths),
        "padding_waste_padded": padded_waste(model.config, lengths, text_lengths, cfg.padded_batch_size),
        "padded_same_ids_fraction": same / len(feats),
    }


def _median_pass(run, min_seconds: float) -> float:
    """Median wall seconds of ``run()``, after one warm-up call, over at least 3 passes and
    ``min_seconds`` in all."""
    run()
    passes: list[float] = []
    while len(passes) < 3 or sum(passes) < min_seconds:
        start = time.perf_counter()
        run()
        passes.append(time.perf_counter() - start)
    return float(np.median(passes))


def bench_features(waves: list[np.ndarray], threads: int, min_seconds: float = 2.0,
                   pairs: "FeaturePairs | None" = None) -> dict:
    """Log-mel features of the corpus, passes repeated for at least ``min_seconds`` (and 3), the
    median pass reported: one pass of a small corpus takes milliseconds. With ``pairs``, its first
    slot of CPU pass pairs runs here (:class:`FeaturePairs`; its figures are read at the end)."""
    from pipeline.stages.features_batch import log_mel_batch

    audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
    packs = feature_packs(waves)
    wall = _median_pass(lambda: [log_mel(w) for w in waves], min_seconds)
    # --features-on accelerator's one call per pack, run here on the CPU
    batch_wall = _median_pass(lambda: [log_mel_batch(p) for p in packs], min_seconds)
    if pairs is not None:
        pairs.run()
    return {"features_rtf_per_core": audio_s / wall / threads, "features_seconds": wall,
            "features_batched_rtf_per_core": audio_s / batch_wall / threads,
            "features_batched_seconds": batch_wall}


def feature_packs(waves: list[np.ndarray]) -> list[list[np.ndarray]]:
    """``waves`` in the rows of one inference call each at the default 8,000-frame budget."""
    from pipeline.stages.packing import rows_per_call

    size = rows_per_call(8000)
    return [waves[i:i + size] for i in range(0, len(waves), size)]


class FeaturePairs:
    """Audio seconds per CPU second of per-utterance ``log_mel`` and of one batched call per pack
    (``--features-on accelerator``'s call, here on the CPU), on one torch thread: what the choice of
    ``--features-on`` rests on (wall time on a shared machine with several torch threads moved
    these by 10-30x).

    Passes alternate in ABBA order (neither way always runs right after the other's allocations),
    in ``slots`` calls of :meth:`run` that a benchmark spreads over its run: the first until both
    ways have ``min_seconds / slots`` of CPU and ``FEATURE_PAIRS / slots`` passes (rounded up), every
    later one the same number of pairs, so each stretch of the run weighs the same. The pairs of
    one stretch agree with each other better than with another stretch's (in three pairs of runs
    with every pair taken in one block, the median moved 11 % from run to run), so pairs from the
    start, the middle and the end of a run sample the machine as two runs both see it."""

    def __init__(self, waves: list[np.ndarray], min_seconds: float, slots: int = 3):
        self.waves, self.packs = waves, feature_packs(waves)
        self.audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
        self.first_goal = (min_seconds / slots, -(-FEATURE_PAIRS // slots))
        self.pairs_per_slot: int | None = None
        self.runs: dict[str, list[float]] = {"per_utterance": [], "batched": []}
        self.order = list(self.runs)
        self.slots_run = 0

    def run(self) -> None:
        from bench.machine import one_torch_thread
        from pipeline.stages.features_batch import log_mel_batch

        ways = {"per_utterance": lambda: [log_mel(w) for w in self.waves],
                "batched": lambda: [log_mel_batch(p) for p in self.packs]}
        def pair() -> None:
            for name in self.order:
                start = time.thread_time()
                ways[name]()
                self.runs[name].append(time.thread_time() - start)
            self.order.reverse()

        with one_torch_thread():
            ways["batched"]()   # warm after whatever ran since the last slot
            if self.pairs_per_slot is None:
                seconds, passes = self.first_goal
                while any(len(r) < passes or sum(r) < seconds for r in self.runs.values()):
                    pair()
                self.pairs_per_slot = len(self.runs["batched"])
            else:
                for _ in range(self.pairs_per_slot):
                    pair()
        self.slots_run += 1

    def figures(self) -> dict:
        """``features_cpu_rtf_one_thread`` (per utterance), ``features_batched_cpu_rtf_one_thread``,
        their pass medians; ``features_batched_vs_per_utterance_cpu``: the median of the ratios of
        neighbouring passes (batched ÷ per-utterance CPU; the VM's speed drifts over seconds, and a
        pair shares its moment where two medians taken apart do not), and those ratios."""
        per, batched = (self.audio_s / float(np.median(self.runs[k])) for k in ("per_utterance", "batched"))
        pairs = [b / p for p, b in zip(self.runs["per_utterance"], self.runs["batched"])]
        return {"features_cpu_rtf_one_thread": per, "features_batched_cpu_rtf_one_thread": batched,
                "features_batched_vs_per_utterance_cpu": float(np.median(pairs)),
                "features_batched_vs_per_utterance_cpu_runs": pairs,
                "features_pair_slots": self.slots_run}


def bench_real_10s(model) -> float:
    """Seconds for one 10 s utterance, end to end through the model (after one warm-up)."""
    wave = corpus_waveforms([10.0], seed=123)[0]
    feats = [model.features(wave)]
    model.transcribe(feats)
    _, seconds = _timed(lambda: model.transcribe([model.features(wave)]), model.device)
    return seconds


def run_benchmark(cfg: BenchmarkConfig, *, echo=print) -> dict:
    threads = cfg.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    arch = size_config(cfg.size)
    model = random_model(arch, seed=cfg.seed, device=cfg.device, dtype=cfg.dtype, numerics=cfg.numerics)
    durations = corpus_durations(cfg.count, cfg.seed)
    waves = corpus_waveforms(durations, cfg.seed)
    audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
    echo(f"corpus: {cfg.count} utterances, {audio_s:.0f} s of audio (seed {cfg.seed}); model size {cfg.size} "
         f"on {model.device} {str(model.dtype).removeprefix('torch.')}, {threads} threads")
    from bench.machine import ReferenceWork

    reference = ReferenceWork(echo=echo)
    reference.sample("start")
    feats = [log_mel(w, numerics=model.numerics) for w in waves]
    calibrate_drafts(model, feats[:8])
    result = {
        "size": cfg.size, "device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
        "numerics": model.numerics,
        "threads": threads,
        "model_dims": {"encoder_layers": arch.encoder.num_layers, "encoder_dim": arch.encoder.hidden_dim,
                       "editor_layers": arch.text.num_hidden_layers, "editor_dim": arch.text.hidden_size,
                       "vocab": arch.text.vocab_size,
                       "parameters": sum(p.numel() for p in model.parameters())},
        "corpus": {"count": cfg.count, "total_seconds": audio_s, "seed": cfg.seed,
                   "min_seconds": min(durations), "max_seconds": max(durations)},
    }
    if not cfg.null_model:
        echo("model-only: packed vs padded ...")
        result.update(bench_model(model, feats, audio_s, cfg))
        if cfg.timestamps == "word":
            from bench.alignment import bench_alignment

            echo("word times: alignment vs inference ...")
            result.update(bench_alignment(model, feats, cfg.max_frames_per_pack))
    echo("features ...")
    from bench.standin_run import bench_standin, cores_budget, stand_in_slots

    slots = stand_in_slots(cfg)
    pairs = FeaturePairs(waves, min_seconds=5 * cfg.measure_seconds, slots=1 + slots)
    result.update(bench_features(waves, threads, min_seconds=5 * cfg.measure_seconds, pairs=pairs))
    if cfg.compare_numerics and not cfg.null_model:
        from bench.numerics_cost import bench_numerics

        echo("numerics profiles: hub vs transformers ...")
        result["numerics_profiles"] = bench_numerics(model, waves, audio_s, cfg.max_frames_per_pack,
                                                     repeats=min(3, cfg.model_repeats))
    costs = None
    if cfg.codecs:
        reference.sample("before the codecs")
        from bench.codecs import DecodeCosts, decode_vs_limit, encoded_files

        files = encoded_files(waves)
        echo("decode (+ features) cost per codec (FLAC, MP3, Opus, AAC): the passes are spread over "
             f"the stand-in's {slots} slots ...")
        costs = DecodeCosts(waves, files)
        echo("decode against the plain FFmpeg / libsndfile paths ...")
        limits = decode_vs_limit(files, min_cpu_seconds=cfg.codec_seconds)
        result["decode_vs_limit"] = {codec: v["ratio"] for codec, v in limits.items()}
        result["decode_vs_limit_detail"] = limits

    reference.sample("before the stand-in")

    def spread_work(label: str) -> None:
        """The measurements spread over the run (the decode passes, the features pass pairs)."""
        echo(f"decode costs and features pass pairs, {label} ...")
        if costs is not None:
            costs.run(min_cpu_seconds=cfg.codec_seconds / slots, min_passes=CODEC_PASSES_PER_SLOT)
        pairs.run()

    result.update(bench_standin(model, waves, cfg, costs, echo=echo, reference=reference,
                                spread_work=spread_work))
    reference.sample("after the stand-in")
    result.update(pairs.figures())
    if costs is not None:
        result["decode_cores_per_1000x"] = costs.results()
        result["cores_per_accelerator_4000x"] = cores_budget(
            result["decode_cores_per_1000x"], result["actor_host_seconds_per_audio_second"],
            result["features_on_accelerator"]["actor_host_seconds_per_audio_second"])
    result["compared_ratios"] = compared_ratios(result)
    result["machine_reference"] = reference.figures()
    if model.device.type == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(model.device)
        if cfg.find_max_pack:
            from bench.packsize import find_max_pack

            echo("largest pack that fits ...")
            result.update(find_max_pack(model, feats, cfg.max_frames_per_pack))
    if cfg.size == "real" and model.device.type == "cpu" and not cfg.null_model:
        echo("real dimensions, one 10 s utterance ...")
        result["real_10s_seconds"] = bench_real_10s(model)
    if cfg.pipeline and not cfg.null_model:
        from bench.pipeline_run import bench_pipeline  # needs Ray; imported only when asked for

        result.update(bench_pipeline(model, waves, cfg, echo=echo))
    if cfg.scale_rows:
        from bench.scale import bench_scale

        result["scale"] = bench_scale(model, cfg, echo=echo)
    return result


def compared_ratios(result: dict) -> dict:
    """The figures two runs of the command are compared on (done when they agree within 10 %), by
    name, each with the spread of its repeats inside this run ((max - min) ÷ median; ``None`` where
    the figure is one measurement): the stand-in's ceilings (CPU time), busy fractions (whole job,
    steady state, actor alone), the shares of the actor's host time, decode vs plain per codec and
    the cores budget per codec."""
    from bench.standin_run import spread

    spreads = result.get("ratio_spreads", {})
    out: dict[str, dict] = {}

    def add(name: str, value, runs=None) -> None:
        if value is not None:
            out[name] = {"value": value, "repeat_spread": spread(runs) if runs else spreads.get(name)}

    add("ceiling_rtfx_per_actor", result.get("ceiling_rtfx_per_actor"))
    acc = result.get("features_on_accelerator", {})
    add("ceiling_rtfx_per_actor.features_on_accelerator", acc.get("ceiling_rtfx_per_actor"),
        acc.get("ceiling_rtfx_per_actor_runs"))
    add("ceiling_rtfx_per_actor_with_decode", result.get("ceiling_rtfx_per_actor_with_decode"))
    add("pipeline_cores_per_1000x", result.get("pipeline_cores_per_1000x"))
    add("features_batched_vs_per_utterance_cpu", result.get("features_batched_vs_per_utterance_cpu"),
        result.get("features_batched_vs_per_utterance_cpu_runs"))
    for group in ("busy_at_rtfx", "busy_steady_at_rtfx", "busy_actor_alone_at_rtfx"):
        for r, v in result.get(group, {}).items():
            add(f"{group}.{r}", v)
    parts = result.get("actor_host_seconds_per_audio_second_parts", {})
    total = sum(parts.values())
    for part, v in parts.items():
        add(f"actor_host_share.{part}", v / total if total else None)
    for codec, v in result.get("decode_vs_limit_detail", {}).items():
        add(f"decode_vs_limit.{codec}", v["ratio"], v.get("ratio_runs"))
    costs = result.get("decode_cores_per_1000x", {})
    for codec, n in result.get("cores_per_accelerator_4000x", {}).items():
        for where in ("features_on_cpu", "features_on_accelerator"):
            runs = costs.get(codec, {}).get("cpu_seconds_runs" if where == "features_on_cpu"
                                            else "decode_cpu_seconds_runs")
            add(f"cores_per_accelerator_4000x.{codec}.{where}", n[where], runs)
    return out


def compare_runs(a: dict, b: dict, tolerance: float = 0.10) -> tuple[list[str], bool]:
    """Lines comparing two benchmark JSONs on their ``compared_ratios``: each figure's values and
    relative difference (|a - b| ÷ the mean), and whether both runs have the same figures and every
    one agrees within ``tolerance``."""
    ra, rb = a.get("compared_ratios", {}), b.get("compared_ratios", {})
    lines, ok = [f"{'figure':<56} {'run 1':>12} {'run 2':>12} {'diff':>7}"], True
    for name in sorted(set(ra) & set(rb)):
        x, y = ra[name]["value"], rb[name]["value"]
        mean = (abs(x) + abs(y)) / 2
        diff = abs(x - y) / mean if mean else 0.0
        ok &= diff <= tolerance
        lines.append(f"{name:<56} {x:>12.4g} {y:>12.4g} {diff:>6.1%}{'' if diff <= tolerance else '  > ' + format(tolerance, '.0%')}")
    for name in sorted(set(ra) ^ set(rb)):
        lines.append(f"{name:<56} only in run {1 if name in ra else 2}: not compared")
        ok = False      # two runs agree on every figure only when both have every figure
    return lines, ok


TABLE_ROWS = (
    ("packed_rtfx", "model-only RTFx, packed", "{:.1f}"),
    ("padded_rtfx", "model-only RTFx, padded baseline", "{:.1f}"),
    ("packed_vs_padded_speedup", "packed / padded speed-up", "{:.2f}x"),
    ("padding_waste_packed", "padding waste, packed", "{:.1%}"),
    ("padding_waste_padded", "padding waste, padded", "{:.1%}"),
    ("pipeline_rtfx", "pipeline RTFx (whole job), 10x corpus", "{:.1f}"),
    ("accelerator_busy", "accelerator busy, 10x corpus", "{:.1%}"),
    ("accelerator_busy_spread", "  spread over repeats (max - min)", "{:.1%}"),
    ("scaling_time_ratio", "time, 10x corpus / 1x", "{:.2f}"),
    ("scaling_rss_ratio", "peak RSS, 10x corpus / 1x", "{:.2f}"),
    ("alignment_share", "word times: alignment / inference time", "{:.1%}"),
    ("features_rtf_per_core", "features: audio s per wall s per core", "{:.0f}"),
    ("features_batched_rtf_per_core", "features, one call per pack: same", "{:.0f}"),
    ("features_cpu_rtf_one_thread", "features: audio s per CPU s, 1 thread", "{:.0f}"),
    ("features_batched_cpu_rtf_one_thread", "features, one call per pack: same", "{:.0f}"),
    ("real_10s_seconds", "real dims: one 10 s utterance (s)", "{:.2f}"),
    ("peak_gpu_bytes", "peak GPU memory (GiB)", "{:.2f}"),
    ("max_frames_per_pack", "largest --max-frames-per-pack that fits", "{}"),
    ("ceiling_rtfx_per_actor", "stand-in: ceiling RTFx per actor, alone", "{:,.0f}"),
    ("ceiling_rtfx_per_actor_wall", "  same, by wall time", "{:,.0f}"),
    ("ceiling_rtfx_per_actor_with_decode", "stand-in: ceiling RTFx per actor, decoding", "{:,.0f}"),
    ("decode_capacity_rtfx", "stand-in: decoders' capacity (FLAC), RTFx", "{:,.0f}"),
    ("pipeline_cores_per_1000x", "stand-in: whole job's cores per 1000x, decoding", "{:.2f}"),
    ("steal_share_in_pipeline_runs", "  CPU time the VM's host stole, those runs", "{:.1%}"),
    ("actor_host_seconds_per_audio_second", "stand-in: actor host CPU s per audio s", "{:.2e}"),
)
SCALE_ROWS = (
    ("utterances", "scale: manifest rows", "{}"),
    ("first_output_seconds", "scale: job start to first Parquet file (s)", "{:.1f}"),
    ("driver_peak_rss_bytes", "scale: driver peak RSS (GiB)", "{:.2f}"),
    ("driver_read_fraction", "scale: driver read / corpus bytes, worst", "{:.4%}"),
)


def _fmt(key: str, fmt: str, value) -> str:
    if value is None:
        return "n/a"
    if key.endswith("_bytes"):
        value = value / 1024**3
    return fmt.format(value)


def format_table(result: dict) -> str:
    lines = [f"{'metric':<42} value", "-" * 56]
    for key, label, fmt in TABLE_ROWS:
        if key in result:
            lines.append(f"{label:<42} {_fmt(key, fmt, result[key])}")
    if "standin_runs_discarded" in result:
        lines.append(f"{'  runs run again, host stole > 10 % (5 % at R = inf)':<42} "
                     f"{len(result['standin_runs_discarded'])}")
    profiles = result.get("numerics_profiles")
    if profiles:
        for name in ("hub", "transformers"):
            lines.append(f"{'numerics ' + name + ': model-only RTFx, packed':<42} {profiles[name]['model_rtfx']:.1f}")
        lines.append(f"{'numerics: hub / transformers model time':<42} {profiles['hub_vs_transformers_model_seconds']:.3f}")
        lines.append(f"{'numerics: hub / transformers features time':<42} "
                     f"{profiles['hub_vs_transformers_features_seconds']:.3f}")
    for codec, cost in result.get("decode_cores_per_1000x", {}).items():
        value = "n/a (" + cost["error"][:60] + ")" if cost.get("error") else f"{cost['cores_per_1000x']:.2f}"
        lines.append(f"{'CPU cores per 1000x real time, ' + codec:<42} {value}")
    for part, v in result.get("actor_host_seconds_per_audio_second_parts", {}).items():
        per_batch = result["actor_host_seconds_per_batch_parts"][part]
        lines.append(f"{'  host part ' + part:<42} {v:.2e} s/audio s, {per_batch * 1e3:.3f} ms/batch")
    acc = result.get("features_on_accelerator")
    if acc:
        lines.append(f"{'stand-in: ceiling, features on the actor':<42} {acc['ceiling_rtfx_per_actor']:,.0f}")
        lines.append(f"{'  host CPU s per audio s, less features':<42} {acc['actor_host_seconds_per_audio_second']:.2e}")
        lines.append(f"{'  features on ' + acc['features_device'] + ', s per audio s':<42} "
                     f"{acc['features_seconds_per_audio_second']:.2e}")
    for r, alone in result.get("busy_actor_alone_at_rtfx", {}).items():
        lines.append(f"{'stand-in: busy at R=' + r + ', actor alone':<42} {alone:.1%}")
    for r, busy in result.get("busy_at_rtfx", {}).items():
        steady = result["busy_steady_at_rtfx"][r]
        lines.append(f"{'stand-in: busy at R=' + r + ', whole job':<42} "
                     f"{_fmt('', '{:.1%}', busy)} (steady {_fmt('', '{:.1%}', steady)}; "
                     f"limited by {result['busy_limited_by'][r]})")
    for codec, ratio in result.get("decode_vs_limit", {}).items():
        plain = result["decode_vs_limit_detail"][codec]["fastest_plain"]
        lines.append(f"{'decode vs plain path (' + plain + '), ' + codec:<42} {ratio:.2f}")
    for codec, n in result.get("cores_per_accelerator_4000x", {}).items():
        lines.append(f"{'cores per accelerator at 4000x, ' + codec:<42} "
                     f"{n['features_on_cpu']:.2f} (features on CPU), "
                     f"{n['features_on_accelerator']:.2f} (on accelerator)")
    ref = result.get("machine_reference") or {}
    if ref.get("cpu_seconds"):
        lines.append(f"{'machine: reference work, CPU ms (median)':<42} {ref['cpu_seconds'] * 1e3:.1f} "
                     f"({len(ref['samples'])} samples, spread {_fmt('', '{:.0%}', ref['spread'])})")
    if ref.get("other_processes_cores_max") is not None:
        lines.append(f"{'machine: other processes, cores (most)':<42} {ref['other_processes_cores_max']:.2f} "
                     f"(median {ref['other_processes_cores']:.2f}; the benchmark's own processes left out)")
    compared = result.get("compared_ratios", {})
    if compared:
        lines.append("")
        lines.append("compared between runs (within 10 %), with the spread of this run's repeats:")
        for name, v in compared.items():
            s = v["repeat_spread"]
            lines.append(f"  {name:<54} {v['value']:.4g}  (repeats {'n/a' if s is None else format(s, '.1%')})")
    for error in result.get("scale", {}).get("errors", []):
        lines.append(f"scale: {error[:120]}")
    for key, label, fmt in SCALE_ROWS:
        if key in result.get("scale", {}):  # None where that part wrote nothing in time
            lines.append(f"{label:<42} {_fmt(key, fmt, result['scale'][key])}")
    for fmt_name, corpus in result.get("scale", {}).get("corpora", {}).items():
        lines.append(f"{'scale: driver read, ' + fmt_name + ' corpus':<42} "
                     f"{corpus['driver_read_bytes']} of {corpus['corpus_bytes']} B "
                     f"({corpus['driver_read_fraction']:.4%})")
    return "\n".join(lines)


__all__ = ["BenchmarkConfig", "compare_runs", "compared_ratios", "format_table", "run_benchmark"]
