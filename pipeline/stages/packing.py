"""Splitting a batch of utterances into packs under a frame budget (pure functions)."""

from __future__ import annotations


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
