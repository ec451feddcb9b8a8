"""CTC conformer encoder (model-spec §3.1), run on a flat pack of utterances.

Shapes: ``N`` = valid frames of all utterances together, ``D`` = hidden_dim, ``C`` = context_size
(attention block), ``nb`` = attention blocks over all utterances, ``H`` heads of ``dh``.

Batch invariance: attention keys past an utterance's end are masked inside its last block, and the
depthwise convolution sees zeros past each end; so every utterance gets exactly what the reference
computes for it alone (batch of 1), whatever it is packed with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .norms import LayerNorm
from .packing import BlockLayout, GappedLayout, block_layout, gapped_layout


@dataclass(frozen=True)
class EncoderLayouts:
    """Per-call index structures shared by every layer."""

    attention: BlockLayout
    conv: GappedLayout
    pooling: BlockLayout

    @classmethod
    def build(cls, lengths: list[int], cfg: EncoderConfig, device: torch.device) -> "EncoderLayouts":
        return cls(
            attention=block_layout(lengths, cfg.context_size, device),
            conv=gapped_layout(lengths, cfg.conv_kernel_size // 2, device),
            pooling=block_layout(lengths, cfg.pooling_window, device),
        )


@dataclass(frozen=True)
class EncoderOutput:
    hidden_cat: torch.Tensor  # (N, (len(cat_hidden_layers) + 1) * D): projector input
    pooled: torch.Tensor  # (num_windows, D): BPE head input, windows of pooling_window frames
    mid_logits: torch.Tensor  # (N, output_dim): self-conditioning head logits


class FeedForward(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.pre_norm = LayerNorm(cfg.hidden_dim)
        self.up_proj = nn.Linear(cfg.hidden_dim, cfg.hidden_dim * cfg.feedforward_mult)
        self.down_proj = nn.Linear(cfg.hidden_dim * cfg.feedforward_mult, cfg.hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.up_proj(self.pre_norm(x))))


def relative_distances(context_size: int, max_pos_emb: int, device: torch.device) -> torch.Tensor:
    """``(C, C)`` indices into the Shaw table: ``clamp(i - j, -C, C) + max_pos_emb``."""
    pos = torch.arange(context_size, device=device)
    return torch.clamp(pos[:, None] - pos[None, :], -context_size, context_size) + max_pos_emb


class BlockAttention(nn.Module):
    """Self-attention inside fixed blocks of ``context_size`` frames, with Shaw relative positions."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        inner = cfg.num_heads * cfg.dim_head
        self.num_heads, self.dim_head = cfg.num_heads, cfg.dim_head
        self.context_size, self.max_pos_emb = cfg.context_size, cfg.max_pos_emb
        self.scale = cfg.dim_head**-0.5
        self.pre_norm = LayerNorm(cfg.hidden_dim)
        self.to_q = nn.Linear(cfg.hidden_dim, inner, bias=False)
        self.to_kv = nn.Linear(cfg.hidden_dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, cfg.hidden_dim)
        self.rel_pos_emb = nn.Embedding(2 * cfg.max_pos_emb + 1, cfg.dim_head)

    def forward(self, x: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
        h = self.pre_norm(x)
        q = self.to_q(h)
        k, v = self.to_kv(h).chunk(2, dim=-1)
        nb, C, H, dh = layout.num_blocks, self.context_size, self.num_heads, self.dim_head
        q, k, v = (layout.scatter(t).view(nb, C, H, dh).transpose(1, 2) for t in (q, k, v))  # (nb, H, C, dh)
        rel = self.rel_pos_emb(relative_distances(C, self.max_pos_emb, x.device))  # (C, C, dh)
        bias = torch.einsum("bhcd,crd->bhcr", q, rel) * self.scale  # (nb, H, C, C)
        bias = bias.masked_fill(~layout.valid[:, None, None, :], float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)  # (nb, H, C, dh)
        out = layout.gather(out.transpose(1, 2).reshape(nb, C, H * dh))  # (N, H*dh)
        return self.to_out(out)


class DepthwiseConv(nn.Module):
    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels, bias=False)

    def forward(self, x: torch.Tensor, layout: GappedLayout) -> torch.Tensor:
        """``(N, C)`` -> ``(N, C)``, zero-padded at every utterance boundary."""
        out = F.conv1d(layout.scatter_channels_first(x), self.conv.weight, groups=self.conv.groups)
        return layout.gather_channels_first(out, shift=self.conv.kernel_size[0] // 2)


def batch_norm_eval(x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """Inference BatchNorm on ``(N, C)`` as one affine map, its coefficients computed in float32."""
    scale = bn.weight.float() * torch.rsqrt(bn.running_var.float() + bn.eps)
    shift = bn.bias.float() - bn.running_mean.float() * scale
    return x * scale.to(x.dtype) + shift.to(x.dtype)


class ConvModule(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        inner = cfg.hidden_dim * cfg.conv_expansion_factor
        self.norm = LayerNorm(cfg.hidden_dim)
        self.up_conv = nn.Conv1d(cfg.hidden_dim, 2 * inner, 1)
        self.depth_conv = DepthwiseConv(inner, cfg.conv_kernel_size)
        self.batch_norm = nn.BatchNorm1d(inner)
        self.down_conv = nn.Conv1d(inner, cfg.hidden_dim, 1)

    def forward(self, x: torch.Tensor, layout: GappedLayout) -> torch.Tensor:
        h = F.linear(self.norm(x), self.up_conv.weight[:, :, 0], self.up_conv.bias)  # (N, 2I): 1x1 conv
        h = F.glu(h, dim=-1)  # (N, I)
        h = self.depth_conv(h, layout)
        h = batch_norm_eval(h, self.batch_norm)
        return F.linear(F.silu(h), self.down_conv.weight[:, :, 0], self.down_conv.bias)


class ConformerBlock(nn.Module):
    """Macaron block: half FF, attention, conv, half FF, then a LayerNorm."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.ff1 = FeedForward(cfg)
        self.attn = BlockAttention(cfg)
        self.conv = ConvModule(cfg)
        self.ff2 = FeedForward(cfg)
        self.post_norm = LayerNorm(cfg.hidden_dim)

    def forward(self, x: torch.Tensor, layouts: EncoderLayouts) -> torch.Tensor:
        x = 0.5 * self.ff1(x) + x
        x = self.attn(x, layouts.attention) + x
        x = self.conv(x, layouts.conv) + x
        x = 0.5 * self.ff2(x) + x
        return self.post_norm(x)


def posterior_weighted_pool(x: torch.Tensor, importance: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
    """Average each window of frames weighted by its non-blank probability: ``(N, D)`` -> ``(windows, D)``."""
    h = layout.scatter(x.float())  # (W, w, D)
    imp = layout.scatter(importance)  # (W, w)
    weights = imp / imp.sum(-1, keepdim=True).clamp_min(1e-8)
    return (weights.unsqueeze(-2) @ h).squeeze(-2).to(x.dtype)


FINAL = -1  # in an export list: the encoder's output (after every block and any self-conditioning)


class ConformerEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_linear = nn.Linear(cfg.input_dim, cfg.hidden_dim)
        self.layers = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.num_layers))
        self.out = nn.Linear(cfg.hidden_dim, cfg.output_dim)
        self.out_mid = nn.Linear(cfg.output_dim, cfg.hidden_dim)

    def forward(self, features: torch.Tensor, layouts: EncoderLayouts, export: tuple[int, ...] | None = None,
                export_after_self_conditioning: bool = False) -> EncoderOutput:
        """``features`` ``(N, input_dim)``: the utterances' stacked frames end to end.

        ``export`` lists the hidden states concatenated for the projector, in order: ``k`` is the
        state after block ``k`` (``0``: the input_linear output), :data:`FINAL` the encoder's
        output. The self-conditioning layer's state is taken before its self-conditioning add
        (the PR, spec §3.1) or after it (``export_after_self_conditioning``: the hub's code, §9.3).
        ``export=None``: the PR's list, ``cat_hidden_layers`` in layer order then :data:`FINAL`.
        """
        if export is None:
            export = tuple(sorted(set(self.cfg.cat_hidden_layers or ()))) + (FINAL,)
        x = self.input_linear(features.to(self.input_linear.weight.dtype))
        wanted = set(export)
        states = {0: x} if 0 in wanted else {}
        blank_probs = mid_logits = None
        for idx, layer in enumerate(self.layers, start=1):
            x = layer(x, layouts)
            conditioning = idx == self.cfg.self_conditioning_layer
            if idx in wanted and not (conditioning and export_after_self_conditioning):
                states[idx] = x
            if conditioning:
                mid_logits = self.out(x)
                probs = torch.softmax(mid_logits.float(), dim=-1)
                blank_probs = probs[:, 0]
                x = x + self.out_mid(probs.to(x.dtype))
                if idx in wanted and export_after_self_conditioning:
                    states[idx] = x
        pooled = posterior_weighted_pool(x, 1.0 - blank_probs, layouts.pooling)
        states[FINAL] = x
        return EncoderOutput(hidden_cat=torch.cat([states[i] for i in export], dim=-1), pooled=pooled,
                             mid_logits=mid_logits)
