"""Cutting long inputs into segments at quiet points (pure functions, deterministic).

An input longer than ``max_segment_s`` is cut greedily: each cut falls at the quietest 20 ms frame
within the last ``search_s`` seconds before the segment limit, and no segment is shorter than
``min_segment_s``. Cut points depend only on the samples and these settings.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 320  # 20 ms energy frames
HOP = 160  # every 10 ms
DEFAULT_SEARCH_S = 8.0
DEFAULT_MIN_SEGMENT_S = 1.0


def frame_energy(wave: np.ndarray) -> np.ndarray:
    """Mean square of each 20 ms frame, every 10 ms: ``energy[k]`` covers samples ``[k*HOP, k*HOP + FRAME)``."""
    if wave.size < FRAME:
        return np.array([float(np.mean(np.square(wave, dtype=np.float64)))]) if wave.size else np.zeros(1)
    csum = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    starts = np.arange(0, wave.size - FRAME + 1, HOP)
    return (csum[starts + FRAME] - csum[starts]) / FRAME


def plan_segments(wave: np.ndarray, max_segment_s: float, *, search_s: float = DEFAULT_SEARCH_S,
                  min_segment_s: float = DEFAULT_MIN_SEGMENT_S, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample ranges covering ``wave`` end to end, each at most ``max_segment_s`` long."""
    n = int(wave.size)
    max_len = int(max_segment_s * sample_rate)
    if max_len <= 0:
        raise ValueError(f"max_segment_s must be > 0, got {max_segment_s}")
    if n <= max_len:
        return [(0, n)]
    min_len = min(int(min_segment_s * sample_rate), max_len // 2)
    search = max(HOP, min(int(search_s * sample_rate), max_len - min_len))
    energy = frame_energy(wave)
    segments, start = [], 0
    while n - start > max_len:
        hi = min(start + max_len, n - min_len)
        lo = max(start + min_len, hi - search)
        cut = _quietest(energy, lo, hi)
        segments.append((start, cut))
        start = cut
    segments.append((start, n))
    return segments


def _quietest(energy: np.ndarray, lo: int, hi: int) -> int:
    """The centre of the quietest energy frame whose centre lies in ``[lo, hi]`` (earliest on ties)."""
    centre = FRAME // 2
    k_lo = max(0, -(-(lo - centre) // HOP))
    k_hi = min(len(energy) - 1, (hi - centre) // HOP)
    if k_hi < k_lo:
        return hi
    k = k_lo + int(np.argmin(energy[k_lo:k_hi + 1]))
    return min(max(k * HOP + centre, lo), hi)


def segment_times(segments: list[tuple[int, int]], sample_rate: int = SAMPLE_RATE,
                  offset_s: float = 0.0) -> list[dict]:
    """Sample ranges of the decoded audio as seconds of the file (``offset_s``: where the decoded
    span starts in the file)."""
    return [{"start_s": offset_s + s / sample_rate, "end_s": offset_s + e / sample_rate} for s, e in segments]


def join_texts(texts: list[str]) -> str:
    """Segment transcripts joined in order with single spaces."""
    return " ".join(t.strip() for t in texts if t and t.strip())


def joint_confidence(confidences: list[float], positions: list[int]) -> float:
    """The confidence of the whole input: exp of the mean log max-prob over all segments' positions."""
    total = sum(positions)
    return float(np.exp(sum(p * np.log(c) for c, p in zip(confidences, positions)) / total))
