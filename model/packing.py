"""Index arithmetic for running many utterances as one flat, padding-free sequence.

Every per-frame operation (linear layers, norms, activations) runs on the flat ``(N, D)`` tensor of
all valid frames. Operations that need a time axis get a *layout*: a zero buffer into which the flat
frames are scattered so that each utterance sees exactly what it would see alone:

* ``blocks``: each utterance right-padded to a multiple of ``size`` (encoder attention blocks,
  BPE pooling windows, Q-Former windows);
* ``gapped``: utterances laid end to end with ``gap`` zero frames around each (depthwise conv).

All functions here are pure and cheap; they are built once per call and shared by every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def offsets(lengths: list[int]) -> list[int]:
    """Start of each utterance in the flat sequence: ``[0, l0, l0+l1, ...]`` (one longer than lengths)."""
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return out


@dataclass(frozen=True)
class BlockLayout:
    """Utterances cut into fixed-size blocks, the last block of each zero-padded.

    ``index[k]`` is the slot of flat frame ``k`` in the ``(num_blocks * size)`` buffer;
    ``valid`` is ``(num_blocks, size)`` bool, True where a real frame sits;
    ``blocks_per_item[b]`` is how many blocks utterance ``b`` owns (contiguously, in order).
    """

    size: int
    index: torch.Tensor
    valid: torch.Tensor
    blocks_per_item: list[int]

    @property
    def num_blocks(self) -> int:
        return self.valid.shape[0]

    def scatter(self, flat: torch.Tensor) -> torch.Tensor:
        """``(N, *rest)`` -> ``(num_blocks, size, *rest)`` with zeros in the padding."""
        buf = flat.new_zeros((self.num_blocks * self.size, *flat.shape[1:]))
        buf[self.index] = flat
        return buf.view(self.num_blocks, self.size, *flat.shape[1:])

    def gather(self, blocked: torch.Tensor) -> torch.Tensor:
        """``(num_blocks, size, *rest)`` -> ``(N, *rest)``, the real frames only."""
        return blocked.reshape(self.num_blocks * self.size, *blocked.shape[2:])[self.index]


def block_layout(lengths: list[int], size: int, device: torch.device | str = "cpu") -> BlockLayout:
    per_item = [ceil_div(n, size) for n in lengths]
    index, valid_rows = [], []
    block_start = 0
    for n, nb in zip(lengths, per_item):
        index.append(torch.arange(n) + block_start * size)
        row = torch.zeros(nb * size, dtype=torch.bool)
        row[:n] = True
        valid_rows.append(row)
        block_start += nb
    index_t = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    valid = torch.cat(valid_rows).view(-1, size) if valid_rows else torch.zeros(0, size, dtype=torch.bool)
    return BlockLayout(size=size, index=index_t.to(device), valid=valid.to(device), blocks_per_item=per_item)


@dataclass(frozen=True)
class GappedLayout:
    """Utterances end to end along time with ``gap`` zero frames before, between and after them."""

    gap: int
    length: int
    index: torch.Tensor

    def scatter_channels_first(self, flat: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` -> ``(1, C, length)`` for a 1-D convolution."""
        buf = flat.new_zeros((self.length, flat.shape[1]))
        buf[self.index] = flat
        return buf.t().unsqueeze(0)

    def gather_channels_first(self, conv_out: torch.Tensor, shift: int) -> torch.Tensor:
        """Conv output ``(1, C, L')`` -> ``(N, C)``; ``shift`` is how many frames the conv removed at the left."""
        return conv_out[0].t()[self.index - shift]


def gapped_layout(lengths: list[int], gap: int, device: torch.device | str = "cpu") -> GappedLayout:
    index, pos = [], gap
    for n in lengths:
        index.append(torch.arange(pos, pos + n))
        pos += n + gap
    index_t = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
    return GappedLayout(gap=gap, length=pos, index=index_t.to(device))


def segment_ids(lengths: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """``[0]*l0 + [1]*l1 + ...`` as a long tensor."""
    return torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths, dtype=torch.long)).to(device)


def positions(lengths: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Position of every flat element within its own utterance: ``arange(l0) ++ arange(l1) ++ ...``."""
    if not lengths:
        return torch.zeros(0, dtype=torch.long, device=device)
    total = sum(lengths)
    starts = torch.tensor(offsets(lengths)[:-1], dtype=torch.long)
    return (torch.arange(total) - torch.repeat_interleave(starts, torch.tensor(lengths))).to(device)
