"""Splitting a batch of utterances into packs under a frame budget (pure functions)."""

from __future__ import annotations

import math

# Rows per inference call come from the frame budget: about PACKS_PER_CALL packs of utterances of
# TYPICAL_FRAMES (8 s, the median of LibriSpeech-like corpora), within ROWS_PER_CALL.
TYPICAL_FRAMES = 400
PACKS_PER_CALL = 2
ROWS_PER_CALL = (8, 512)


def rows_per_call(max_frames: int) -> int:
    """Rows of one inference call for a pack budget of ``max_frames`` frames: enough for
    ``PACKS_PER_CALL`` full packs of typical utterances, so a call fills its packs, while the actor's
    concurrent calls keep the next batch's host work overlapping this one's forwards."""
    if max_frames <= 0:
        raise ValueError(f"max_frames must be > 0, got {max_frames}")
    low, high = ROWS_PER_CALL
    return min(high, max(low, math.ceil(PACKS_PER_CALL * max_frames / TYPICAL_FRAMES)))


def plan_packs(lengths: list[int], max_frames: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into packs whose total stays within ``max_frames``.

    Utterances are taken shortest first (ties in input order) and added greedily, so each pack holds
    similar lengths; one longer than the budget gets a pack of its own. Every index appears once.
    """
    if max_frames <= 0:
        raise ValueError(f"max_frames must be > 0, got {max_frames}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    packs: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        if current and total + lengths[i] > max_frames:
            packs.append(current)
            current, total = [], 0
        current.append(i)
        total += lengths[i]
    if current:
        packs.append(current)
    return packs


def restore_order(packs: list[list[int]], results: list[list]) -> list:
    """Per-pack results back in the original index order."""
    out: list = [None] * sum(len(p) for p in packs)
    for pack, pack_results in zip(packs, results):
        if len(pack) != len(pack_results):
            raise ValueError(f"pack of {len(pack)} gave {len(pack_results)} results")
        for i, result in zip(pack, pack_results):
            out[i] = result
    return out
