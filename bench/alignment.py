"""The cost of word times (``--timestamps word``): CTC forced alignment as a share of inference.

Same run, same packs, same model: each pack is transcribed (timed: the inference), then the
transcripts are aligned to the BPE head over the pack's pooled encoder states (timed: the
alignment, exactly the work ``NarModel.transcribe_with_alignment`` adds; the encoder pass that
provides those states is not timed again). ``alignment_share`` = Σ alignment ÷ Σ inference.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.batches import _sync
from model.alignment import OK, align_pack
from pipeline.stages.packing import plan_packs

REPEATS = 3


def bench_alignment(model, feats: list[np.ndarray], budget: int) -> dict:
    device = model.device
    head, cfg = model.model.out_bpe, model.config
    packs = plan_packs([f.shape[0] for f in feats], budget)
    shares, infer_total, align_total, statuses = [], 0.0, 0.0, []
    for _ in range(REPEATS):
        infer_s = align_s = 0.0
        statuses = []
        for pack in packs:
            batch = [feats[i] for i in pack]
            _sync(device)
            started = time.perf_counter()
            results = model.transcribe(batch)
            _sync(device)
            infer_s += time.perf_counter() - started
            encoded = model.encode(batch)  # the states transcribe had; not timed again
            _sync(device)
            started = time.perf_counter()
            with torch.inference_mode():
                aligned = align_pack(encoded.encoder.pooled, head.weight, head.bias, encoded.lengths,
                                     cfg.encoder.pooling_window, cfg.blank_token_id, [r.token_ids for r in results])
            _sync(device)
            align_s += time.perf_counter() - started
            statuses += [a.status for a in aligned]
        shares.append(align_s / infer_s)
        infer_total, align_total = infer_s, align_s
    return {"alignment_share": float(np.median(shares)), "alignment_share_runs": shares,
            "alignment_seconds": align_total, "alignment_inference_seconds": infer_total,
            "alignment_ok_fraction": sum(s == OK for s in statuses) / max(1, len(statuses))}
