"""The two ways of running the model that the benchmark compares: padded batches (as the reference and
the leaderboard scripts batch) and our padding-free packs."""

from __future__ import annotations

import numpy as np
import torch

from model import Encoded, ceil_div, ctc_collapse
from pipeline.stages.packing import plan_packs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def padded_batch(model, feats: list[np.ndarray]) -> list[list[int]]:
    """The reference's batching: pad every utterance to the longest, run the encoder on the padding,
    then take each one's own frames for the draft and the editor (which is unpadded, as in the reference)."""
    longest = max(f.shape[0] for f in feats)
    padded = [np.pad(f, ((0, longest - f.shape[0]), (0, 0))) for f in feats]
    enc = model.encode(padded)
    cfg = model.config
    lengths = [f.shape[0] for f in feats]
    windows_each = ceil_div(longest, cfg.encoder.pooling_window)
    keep = torch.cat([torch.arange(ceil_div(n, cfg.encoder.pooling_window)) + i * windows_each for i, n in enumerate(lengths)])
    drafts = ctc_collapse(enc.bpe_ids[keep.to(enc.bpe_ids.device)], [ceil_div(n, cfg.encoder.pooling_window) for n in lengths],
                          cfg.blank_token_id)
    tokens_each = longest // cfg.projector.downsample_rate
    audio_tokens = [n // cfg.projector.downsample_rate for n in lengths]
    rows = torch.cat([torch.arange(a) + i * tokens_each for i, a in enumerate(audio_tokens)])
    encoded = Encoded(lengths, enc.encoder, enc.bpe_ids, drafts, enc.audio_embeds[rows.to(enc.audio_embeds.device)], audio_tokens)
    head, text_lengths = model.edit(encoded, drafts)
    return ctc_collapse(head.ids, text_lengths, cfg.blank_token_id)


def packed_batches(model, feats: list[np.ndarray], budget: int) -> list[list[int]]:
    packs = plan_packs([f.shape[0] for f in feats], budget)
    out: list = [None] * len(feats)
    for pack in packs:
        for i, res in zip(pack, model.transcribe([feats[i] for i in pack])):
            out[i] = res.token_ids
    return out
