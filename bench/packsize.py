"""The largest ``--max-frames-per-pack`` that fits on the accelerator (CUDA), and its peak memory."""

from __future__ import annotations

from typing import Callable

import numpy as np


def largest_fitting(fits: Callable[[int], bool], start: int, limit: int, steps: int = 6) -> int | None:
    """The largest budget in ``[start, limit]`` for which ``fits(budget)`` holds, assuming that
    fitting is monotone: doubling from ``start`` to the first failure, then ``steps`` bisections.
    ``None`` when even ``start`` does not fit."""
    if not fits(start):
        return None
    good, bad = start, None
    while bad is None and good < limit:
        trial = min(2 * good, limit)
        if fits(trial):
            good = trial
        else:
            bad = trial
    for _ in range(steps if bad is not None else 0):
        mid = (good + bad) // 2
        if mid <= good:
            break
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def pack_of(feats: list[np.ndarray], frames: int) -> list[np.ndarray]:
    """Corpus clips cycled until their frames reach ``frames`` (the last one cut): one full pack."""
    out, total, i = [], 0, 0
    while total < frames:
        f = feats[i % len(feats)][: frames - total]
        if f.shape[0] >= 3:
            out.append(f)
        total += f.shape[0]
        i += 1
    return out


def find_max_pack(model, feats: list[np.ndarray], start: int, limit: int = 1_000_000) -> dict:
    """Run one full pack per trial budget on CUDA; out-of-memory means it does not fit.

    Returns ``max_frames_per_pack`` and ``peak_gpu_bytes`` (``torch.cuda.max_memory_allocated``
    over the largest fitting pack)."""
    import torch

    peaks: dict[int, int] = {}

    def fits(budget: int) -> bool:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            model.transcribe(pack_of(feats, budget))
            torch.cuda.synchronize()
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            torch.cuda.empty_cache()
        peaks[budget] = torch.cuda.max_memory_allocated()
        return True

    best = largest_fitting(fits, start, limit)
    return {"max_frames_per_pack": best, "peak_gpu_bytes_at_max": peaks.get(best)}
