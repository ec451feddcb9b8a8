"""The editor's two attention paths and the encoder's batched block attention.

The CUDA path calls ``torch.nn.attention.varlen.varlen_attn``, which has no CPU kernel. Everything
around the kernel (which path is picked, the flat ``(M, heads, hd)`` layout, ``cu_seqlens``, the
maximum length, the scale, GQA, batch invariance) runs here on CPU by giving the editor a CPU
implementation of the kernel's documented contract; only the flash kernel itself is not run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import model.editor as editor
from model import load_model
from model.conformer import EncoderLayouts
from model.editor import attention_backend
from tests.model.conftest import TINY

UIDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05", "a06_long"]


class CpuVarlen:
    """``varlen_attn``'s contract on CPU: each sequence ``cu_seq[i]:cu_seq[i+1]`` attends only to
    itself; the arguments are checked as the CUDA kernel would need them."""

    def __init__(self):
        self.calls = []

    def __call__(self, q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None, enable_gqa=False,
                 num_splits=None):
        assert q.ndim == k.ndim == v.ndim == 3 and q.shape[0] == k.shape[0] == v.shape[0]
        assert cu_seq_q.dtype == torch.int32 and torch.equal(cu_seq_q, cu_seq_k)
        lengths = (cu_seq_q[1:] - cu_seq_q[:-1]).tolist()
        assert int(cu_seq_q[0]) == 0 and int(cu_seq_q[-1]) == q.shape[0] and max_q == max_k == max(lengths)
        assert enable_gqa == (q.shape[1] != k.shape[1]) and num_splits == 1
        self.calls.append(lengths)
        out = []
        for a, b in zip(cu_seq_q[:-1].tolist(), cu_seq_q[1:].tolist()):
            qs, ks, vs = (t[a:b].transpose(0, 1) for t in (q, k, v))
            out.append(F.scaled_dot_product_attention(qs, ks, vs, scale=scale, enable_gqa=enable_gqa).transpose(0, 1))
        return torch.cat(out)


def test_backend_is_varlen_only_on_cuda_in_half_precision():
    assert attention_backend(torch.device("cpu"), torch.float32) == "sdpa"
    assert attention_backend(torch.device("cpu"), torch.bfloat16) == "sdpa"
    assert attention_backend(torch.device("cuda"), torch.bfloat16) == "varlen"
    assert attention_backend(torch.device("cuda"), torch.float16) == "varlen"
    assert attention_backend(torch.device("cuda"), torch.float32) == "sdpa"  # flash kernels have no fp32


def test_pytorch_varlen_kernel_has_no_cpu_implementation():
    from torch.nn.attention.varlen import varlen_attn

    q = torch.zeros(5, 4, 16)
    cu = torch.tensor([0, 2, 5], dtype=torch.int32)
    with pytest.raises(NotImplementedError):
        varlen_attn(q, q, q, cu, cu, 3, 3)


def test_varlen_path_gives_the_reference_ids_in_one_call_per_layer(monkeypatch, features, expected):
    kernel = CpuVarlen()
    monkeypatch.setattr(editor, "_varlen_kernel", lambda: kernel)
    feats = [features[u] for u in UIDS]
    sdpa_model = load_model(TINY, device="cpu")
    varlen_model = load_model(TINY, device="cpu")
    varlen_model.attention_backend = "varlen"
    for steps in (1, 2):
        kernel.calls.clear()
        got = varlen_model.transcribe(feats, editing_steps=steps, return_logits=True)
        want = sdpa_model.transcribe(feats, editing_steps=steps, return_logits=True)
        assert [r.token_ids for r in got] == [expected[u][f"step{steps}_ids"] for u in UIDS]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.logits, w.logits, atol=1e-4, rtol=0)
        # one kernel call per editor layer and editing pass, each over all six utterances at once
        layers = varlen_model.config.text.num_hidden_layers
        assert len(kernel.calls) == layers * steps and all(len(c) == len(UIDS) for c in kernel.calls)


def test_varlen_path_is_batch_invariant(monkeypatch, features, expected):
    monkeypatch.setattr(editor, "_varlen_kernel", lambda kernel=CpuVarlen(): kernel)
    model = load_model(TINY, device="cpu")
    model.attention_backend = "varlen"
    alone = model.transcribe([features["a05"]], return_logits=True)[0]
    packed = model.transcribe([features["a06_long"], features["a05"], features["a02"]], return_logits=True)[1]
    assert alone.token_ids == packed.token_ids == expected["a05"]["step1_ids"]
    np.testing.assert_allclose(alone.logits, packed.logits, atol=1e-5, rtol=0)


def test_unknown_backend_is_refused(features):
    model = load_model(TINY, device="cpu")
    model.attention_backend = "flash"
    with pytest.raises(ValueError, match="attention backend must be one of"):
        model.transcribe([features["a02"]])


def test_encoder_attention_is_one_batched_call_per_layer(monkeypatch, features):
    calls = []
    real_sdpa = F.scaled_dot_product_attention

    def counting_sdpa(q, *args, **kwargs):
        calls.append(tuple(q.shape))
        return real_sdpa(q, *args, **kwargs)

    model = load_model(TINY, device="cpu")
    monkeypatch.setattr("model.conformer.F.scaled_dot_product_attention", counting_sdpa)
    enc = model.config.encoder
    feats = [torch.from_numpy(features[u]) for u in UIDS]
    lengths = [f.shape[0] for f in feats]
    with torch.inference_mode():
        out = model.model.encoder(torch.cat(feats), EncoderLayouts.build(lengths, enc, torch.device("cpu")))
    blocks = sum(-(-n // enc.context_size) for n in lengths)
    # every block of every utterance in one (blocks, heads, C, dh) call per layer: no Python loop
    assert calls == [(blocks, enc.num_heads, enc.context_size, enc.dim_head)] * enc.num_layers
    assert out.mid_logits.shape == (sum(lengths), enc.output_dim)


def test_bfloat16_on_cpu_agrees_with_float32_for_most_utterances(features, expected):
    model = load_model(TINY, device="cpu", dtype="bfloat16")
    got = model.transcribe([features[u] for u in UIDS])
    same = [u for u, r in zip(UIDS, got) if r.token_ids == expected[u]["step1_ids"]]
    # Observed: 4 of 6 on one CPU, 3 of 6 on another (a04, a05 and sometimes a06_long differ: the
    # random tiny model's top-2 logit margins are small, and CPU bf16 matmul kernels differ by ISA).
    assert len(same) >= 3
    assert {"a01_short", "a02", "a03_twoblocks"} <= set(same)
