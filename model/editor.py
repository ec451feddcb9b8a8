"""Bidirectional Granite editor (model-spec §3.6) over one flat packed sequence.

Each utterance's sequence is ``[audio tokens | slotted draft]``; positions restart at 0 for every
utterance and attention is block-diagonal (an utterance never sees another). Two attention paths:

* ``"varlen"`` (CUDA, float16/bfloat16): PyTorch's own flash kernel,
  ``torch.nn.attention.varlen.varlen_attn``, once per layer over the whole pack, with the pack's
  cumulative lengths, GQA inside the kernel and ``num_splits=1`` (batch invariant: an utterance's
  output does not depend on what it is packed with).
* ``"sdpa"`` (everything else, CPU included, where ``varlen_attn`` raises ``NotImplementedError``):
  PyTorch SDPA on each utterance's own slice (no mask, no padding); exact fp32 parity with the
  reference's batch of 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TextConfig
from .norms import RMSNorm

ATTENTION_BACKENDS = ("sdpa", "varlen")


def attention_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The editor attention path for ``device`` and ``dtype``: ``"varlen"`` where PyTorch's flash
    varlen kernel runs (CUDA, float16/bfloat16, torch >= 2.10), else ``"sdpa"``."""
    if device.type != "cuda" or dtype not in (torch.float16, torch.bfloat16):
        return "sdpa"
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401 - availability check
    except ImportError:
        return "sdpa"
    return "varlen"


def _varlen_kernel():
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """``(M,)`` integer positions -> cos, sin ``(M, head_dim)``, computed in float32 then cast."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class PackedSequences:
    """Per-call metadata for the packed editor input: lengths, cumulative offsets, RoPE tables."""

    def __init__(self, lengths: list[int], positions: torch.Tensor, cfg: TextConfig, dtype: torch.dtype,
                 backend: str | None = None) -> None:
        self.lengths = lengths
        device = positions.device
        self.backend = backend or attention_backend(device, dtype)
        if self.backend not in ATTENTION_BACKENDS:
            raise ValueError(f"attention backend must be one of {ATTENTION_BACKENDS}, got {self.backend!r}")
        # (B + 1,) int32 offsets of each sequence in the flat pack, as varlen kernels take them
        self.cu_seqlens = F.pad(torch.tensor(lengths, device=device).cumsum(0), (1, 0)).to(torch.int32)
        self.max_len = max(lengths) if lengths else 0
        cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, dtype)
        self.cos, self.sin = cos[:, None, :], sin[:, None, :]  # (M, 1, hd): broadcast over heads


class EditorAttention(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.scale = cfg.attention_multiplier
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias=cfg.attention_bias)

    def forward(self, x: torch.Tensor, packed: PackedSequences) -> torch.Tensor:
        M = x.shape[0]
        q = self.q_proj(x).view(M, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(M, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(M, self.num_kv_heads, self.head_dim)
        q = q * packed.cos + rotate_half(q) * packed.sin
        k = k * packed.cos + rotate_half(k) * packed.sin
        if packed.backend == "varlen":
            out = self._attend_varlen(q, k, v, packed)
        else:
            out = torch.cat([self._attend_one(qs, ks, vs) for qs, ks, vs in
                             zip(q.split(packed.lengths), k.split(packed.lengths), v.split(packed.lengths))])
        return self.o_proj(out.reshape(M, -1))

    def _attend_varlen(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       packed: PackedSequences) -> torch.Tensor:
        """The whole pack in one kernel call: ``(M, nh, hd)``, ``(M, nkv, hd)`` x2 -> ``(M, nh, hd)``."""
        return _varlen_kernel()(q, k, v, packed.cu_seqlens, packed.cu_seqlens, packed.max_len, packed.max_len,
                                scale=self.scale, enable_gqa=self.num_heads != self.num_kv_heads, num_splits=1)

    def _attend_one(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One utterance: ``(L, heads, hd)`` each -> ``(L, nh, hd)``, full bidirectional attention."""
        out = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                             scale=self.scale, enable_gqa=self.num_heads != self.num_kv_heads)
        return out.transpose(0, 1)


class EditorMLP(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class EditorLayer(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = EditorAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = EditorMLP(cfg)
        self.residual_multiplier = cfg.residual_multiplier

    def forward(self, h: torch.Tensor, packed: PackedSequences) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), packed) * self.residual_multiplier
        return h + self.mlp(self.post_attention_layernorm(h)) * self.residual_multiplier


class GraniteEditor(nn.Module):
    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(EditorLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, inputs_embeds: torch.Tensor, packed: PackedSequences) -> torch.Tensor:
        """``inputs_embeds`` ``(M, hidden)`` unscaled -> final hidden states ``(M, hidden)``."""
        h = inputs_embeds * self.cfg.embedding_multiplier
        for layer in self.layers:
            h = layer(h, packed)
        return self.norm(h)
