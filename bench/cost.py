"""A FLOP model of one forward, to say how much of the computed work is padding.

``padding_waste = (computed - useful) / computed``, with every stage weighted by its FLOPs: per-frame
encoder/projector layers, encoder attention blocks (C x C scores per block), BPE pooling windows,
Q-Former windows and editor tokens. "Useful" is the same forward with no padding anywhere (each
attention block only as long as its real frames); "computed" is what a batching strategy runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from model import NarConfig, ceil_div


@dataclass(frozen=True)
class Costs:
    frame: float  # encoder + projector per-frame layers, per frame
    block_pair: float  # encoder attention, per (query, key) pair
    window: float  # BPE head, per pooled window
    qformer_slot: float  # Q-Former keys, per frame slot of a window
    qformer_query: float  # Q-Former queries, per query
    token: float  # editor, per token (plus the LM head on text tokens)
    head: float  # LM head per text token


def costs(cfg: NarConfig) -> Costs:
    e, p, t = cfg.encoder, cfg.projector, cfg.text
    D, F, I, K = e.hidden_dim, e.hidden_dim * e.feedforward_mult, e.hidden_dim * e.conv_expansion_factor, e.conv_kernel_size
    inner = e.num_heads * e.dim_head
    per_layer = 8 * D * F + 8 * D * inner + 6 * D * I + 2 * I * K
    n_cat = len(e.cat_hidden_layers) + 1
    frame = e.num_layers * per_layer + 2 * e.input_dim * D + 2 * n_cat * D * p.hidden_size
    block_pair = e.num_layers * 6 * inner
    hp, ip = p.hidden_size, p.intermediate_size
    qformer_slot = p.num_hidden_layers * 4 * hp * hp
    qformer_query = p.num_hidden_layers * (4 * hp * hp + 4 * hp * ip) + 2 * hp * hp
    ht = t.hidden_size
    q_kv = t.num_attention_heads * t.head_dim + 2 * t.num_key_value_heads * t.head_dim
    token = t.num_hidden_layers * (2 * ht * q_kv + 2 * t.num_attention_heads * t.head_dim * ht + 6 * ht * t.intermediate_size)
    return Costs(frame, block_pair, 2 * D * e.vocabulary_size, qformer_slot, qformer_query, token, 2 * ht * t.vocab_size)


def _encoder_flops(c: Costs, cfg: NarConfig, frames: int, exact: bool) -> float:
    """One utterance of ``frames`` (padded or not) through encoder and projector."""
    C = cfg.encoder.context_size
    blocks = [min(C, frames - s) for s in range(0, frames, C)]
    attn = sum((b if exact else C) ** 2 for b in blocks) * c.block_pair
    windows = ceil_div(frames, cfg.encoder.pooling_window)
    qwin = ceil_div(frames, cfg.projector.window_size)
    slots = frames if exact else qwin * cfg.projector.window_size
    queries = frames // cfg.projector.downsample_rate if exact else qwin * cfg.projector.num_queries
    return frames * c.frame + attn + windows * c.window + slots * c.qformer_slot + queries * c.qformer_query


def _editor_flops(c: Costs, cfg: NarConfig, frames: int, text_len: int) -> float:
    tokens = frames // cfg.projector.downsample_rate + text_len
    return tokens * c.token + text_len * c.head


def packed_waste(cfg: NarConfig, lengths: list[int], text_lengths: list[int]) -> float:
    """Padding share of the packed path: only attention-block, window and Q-Former padding remain."""
    c = costs(cfg)
    useful = sum(_encoder_flops(c, cfg, n, True) + _editor_flops(c, cfg, n, m) for n, m in zip(lengths, text_lengths))
    computed = sum(_encoder_flops(c, cfg, n, False) + _editor_flops(c, cfg, n, m) for n, m in zip(lengths, text_lengths))
    return (computed - useful) / computed


def padded_waste(cfg: NarConfig, lengths: list[int], text_lengths: list[int], batch_size: int) -> float:
    """Padding share of fixed-size batches padded to their longest member (editor unpadded, as the reference)."""
    c = costs(cfg)
    useful = computed = 0.0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start:start + batch_size]
        longest = max(batch)
        for n, m in zip(batch, text_lengths[start:start + batch_size]):
            editor = _editor_flops(c, cfg, n, m)
            useful += _encoder_flops(c, cfg, n, True) + editor
            computed += _encoder_flops(c, cfg, longest, False) + editor
    return (computed - useful) / computed
