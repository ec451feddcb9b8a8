"""Encoder-to-LLM projector (model-spec §3.3): layer fusion, then a windowed Q-Former.

Every ``window_size`` (15) encoder frames become ``window_size // downsample_rate`` (3) LLM-width
vectors: one audio token per 100 ms. Windows never cross utterances; the last window of each
utterance is zero-padded exactly as in the reference's batch of 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ProjectorConfig
from .norms import LayerNorm
from .packing import BlockLayout


class CrossAttention(nn.Module):
    def __init__(self, cfg: ProjectorConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        inner = self.num_heads * self.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, inner, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, inner, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, inner, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(inner, cfg.hidden_size, bias=cfg.attention_bias)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``queries`` ``(W, Q, H)`` attend to ``keys`` ``(W, window, H)`` of the same window."""
        W, Q, _ = queries.shape
        q = self.q_proj(queries).view(W, Q, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(keys).view(W, -1, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(keys).view(W, -1, self.num_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.head_dim**-0.5)  # (W, nh, Q, hd)
        return self.o_proj(out.transpose(1, 2).reshape(W, Q, -1))


class QFormerMLP(nn.Module):
    def __init__(self, cfg: ProjectorConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)))


class QFormerLayer(nn.Module):
    """Cross-attention (no query self-attention) and an MLP, both pre-norm residual."""

    def __init__(self, cfg: ProjectorConfig) -> None:
        super().__init__()
        self.input_layernorm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, elementwise_affine=False)
        self.cross_attn = CrossAttention(cfg)
        self.post_attention_layernorm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, elementwise_affine=False)
        self.mlp = QFormerMLP(cfg)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        q = q + self.cross_attn(self.input_layernorm(q), kv)
        return q + self.mlp(self.post_attention_layernorm(q))


class QFormer(nn.Module):
    def __init__(self, cfg: ProjectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(QFormerLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.queries = nn.Parameter(torch.zeros(1, cfg.num_queries, cfg.hidden_size))
        self.pos_emb = nn.Parameter(torch.zeros(1, cfg.window_size, cfg.hidden_size))
        self.norm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, elementwise_affine=False)
        self.linear = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, windows: BlockLayout) -> torch.Tensor:
        """``x`` ``(N, H)`` -> ``(W * num_queries, H)``, ``num_queries`` tokens per window in order."""
        enc = windows.scatter(x)  # (W, window, H)
        W, _, H = enc.shape
        mean_pool = enc.view(W, self.cfg.num_queries, self.cfg.downsample_rate, H).mean(-2)  # (W, Q, H)
        q = self.queries + mean_pool
        kv = enc + self.pos_emb
        for layer in self.layers:
            q = layer(q, kv)
        return self.linear(self.norm(q).reshape(W * self.cfg.num_queries, H))


class Projector(nn.Module):
    def __init__(self, cfg: ProjectorConfig, encoder_dim: int, num_exported: int) -> None:
        super().__init__()
        self.encoder_dim = encoder_dim
        self.norm = LayerNorm(encoder_dim, eps=cfg.layer_norm_eps, elementwise_affine=False)
        self.proj = nn.Linear(encoder_dim * num_exported, cfg.hidden_size)
        self.qformer = QFormer(cfg)

    def forward(self, hidden_cat: torch.Tensor, windows: BlockLayout) -> torch.Tensor:
        """``hidden_cat`` ``(N, L * D)``: each exported layer normalised on its own, fused, then pooled."""
        h = self.norm(hidden_cat.unflatten(-1, (-1, self.encoder_dim))).flatten(-2)
        h = F.gelu(self.proj(h))  # (N, H)
        return self.qformer(h, windows)
