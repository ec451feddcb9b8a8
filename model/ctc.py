"""Pure helpers of the NAR loop: CTC collapse, insertion slots, chunked greedy heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def ctc_collapse(ids: torch.Tensor, lengths: list[int], blank: int) -> list[list[int]]:
    """Greedy CTC on a flat ``(sum(lengths),)`` id tensor: merge repeats, drop blanks, per utterance.

    A repeat is only merged inside one utterance (the first frame of each utterance always counts).
    """
    if ids.numel() == 0:
        return [[] for _ in lengths]
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=ids.device),
                                    torch.tensor(lengths, device=ids.device))
    first = torch.ones_like(ids, dtype=torch.bool)
    first[1:] = (ids[1:] != ids[:-1]) | (owner[1:] != owner[:-1])
    keep = first & (ids != blank)
    kept_ids, kept_owner = ids[keep].tolist(), owner[keep].tolist()
    out: list[list[int]] = [[] for _ in lengths]
    for tok, who in zip(kept_ids, kept_owner):
        out[who].append(tok)
    return out


def insert_slots(ids: list[int], blank: int, min_length: int = 1) -> list[int]:
    """``[a, b]`` -> ``[blank, a, blank, b, blank]``: length ``max(2n + 1, min_length)``, the extra
    positions trailing blanks (``min_length`` > 1: the hub's ``min_edit_sequence_length``, spec §9.2;
    the PR has none, spec §3.4). ``[blank] * min_length`` when empty."""
    out = [blank] * max(2 * len(ids) + 1, min_length)
    out[1:2 * len(ids):2] = ids
    return out


@dataclass(frozen=True)
class GreedyHead:
    """Argmax and per-position log max-probability of a linear head, computed in row chunks.

    The vocabulary is large (100k), so full logits for a pack would take gigabytes; only the
    ``(rows,)`` argmax and max log-softmax are kept unless ``keep_logits`` is asked for.
    """

    ids: torch.Tensor  # (rows,) long
    max_logprob: torch.Tensor  # (rows,) float32
    logits: torch.Tensor | None  # (rows, V) float32 when kept


def greedy_head(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    scale: float = 1.0,
    keep_logits: bool = False,
    max_elements: int = 1 << 26,
) -> GreedyHead:
    rows = hidden.shape[0]
    chunk = max(1, max_elements // max(1, weight.shape[0]))
    ids, lps, kept = [], [], []
    for start in range(0, rows, chunk):
        logits = F.linear(hidden[start:start + chunk], weight, bias)
        if scale != 1.0:
            logits = logits / scale
        logits = logits.float()
        best, arg = logits.max(-1)
        ids.append(arg)
        lps.append(best - torch.logsumexp(logits, dim=-1))
        if keep_logits:
            kept.append(logits)
    empty = hidden.new_zeros(0, dtype=torch.long)
    return GreedyHead(
        ids=torch.cat(ids) if ids else empty,
        max_logprob=torch.cat(lps) if lps else hidden.new_zeros(0, dtype=torch.float32),
        logits=(torch.cat(kept) if kept else hidden.new_zeros(0, weight.shape[0], dtype=torch.float32)) if keep_logits else None,
    )
