"""The cost of each numerics profile (model-spec §9) on the same weights, corpus and machine.

The profiles differ in the frame count (hub: ``N // 320`` encoder frames, transformers: one more),
the edit sequence (hub: at least ``min_edit_sequence_length`` positions) and which encoder state
is exported (no cost). Both are timed in one run, alternating, the median of each reported.
"""

from __future__ import annotations

import time

import numpy as np

from model import NUMERICS, log_mel

from bench.batches import _sync, packed_batches

REPEATS = 3


def _time(fn, device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench_numerics(model, waves: list[np.ndarray], audio_s: float, max_frames_per_pack: int,
                   repeats: int = REPEATS) -> dict:
    """Per profile: features seconds (log-mel of the corpus), model seconds (packed, features
    given) and model-only RTFx, stacked frames and editor positions; plus the hub / transformers
    ratio of each time (``repeats`` timings each, alternating, medians). ``model`` is any
    :class:`~model.NarModel`; its weights serve both."""
    models = {name: model.with_numerics(name) for name in NUMERICS}
    feats = {name: [log_mel(w, numerics=name) for w in waves] for name in NUMERICS}
    for name in NUMERICS:   # warm-up
        packed_batches(models[name], feats[name][:1], max_frames_per_pack)
    times: dict[str, dict[str, list[float]]] = {n: {"features": [], "model": []} for n in NUMERICS}
    for _ in range(repeats):
        for name in NUMERICS:
            times[name]["features"].append(_time(lambda: [log_mel(w, numerics=name) for w in waves], model.device))
            times[name]["model"].append(_time(
                lambda: packed_batches(models[name], feats[name], max_frames_per_pack), model.device))
    out: dict = {}
    for name in NUMERICS:
        results = models[name].transcribe(feats[name][:8])
        model_s = float(np.median(times[name]["model"]))
        out[name] = {
            "features_seconds": float(np.median(times[name]["features"])),
            "model_seconds": model_s,
            "model_rtfx": audio_s / model_s,
            "frames": int(sum(f.shape[0] for f in feats[name])),
            "editor_positions_first_8": int(sum(r.positions for r in results)),
        }
    for key in ("features_seconds", "model_seconds"):
        out[f"hub_vs_transformers_{key}"] = out["hub"][key] / out["transformers"][key]
    return out
