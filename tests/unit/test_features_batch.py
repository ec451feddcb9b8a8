"""The pack's features in one batched call (--features-on accelerator) equal log_mel's per utterance,
under both numerics profiles, and give the fixture's ids (run here on the CPU, the same code path)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from model import load_model, log_mel
from pipeline.stages.features_batch import log_mel_batch
from tests.conftest import TINY_AUDIO, TINY_MODEL

UIDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05"]


@pytest.fixture(scope="module")
def waves() -> dict:
    return {u: sf.read(TINY_AUDIO / f"{u}.flac", dtype="float32")[0] for u in UIDS}


@pytest.mark.parametrize("numerics", ["transformers", "hub"])
@pytest.mark.parametrize("slice_frames", [7, 1024, 10**9])
def test_batched_features_equal_log_mel(waves, numerics, slice_frames, monkeypatch):
    # the CPU computes the mel power in slices of frames: slice edges inside utterances, between
    # them, and one slice (as on a GPU) give the same features
    monkeypatch.setattr("pipeline.stages.features_batch.CPU_FRAMES_PER_SLICE", slice_frames)
    rng = np.random.default_rng(0)
    # odd and even mel counts, exact hops, the shortest inputs each profile accepts
    extra = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (400, 481, 640, 3200, 3359)]
    batch = [waves[u] for u in UIDS] + extra
    got = log_mel_batch(batch, numerics=numerics)
    for w, g in zip(batch, got):
        want = log_mel(w, numerics=numerics)
        assert g.shape == want.shape
        np.testing.assert_allclose(g.numpy(), want, atol=1e-5, rtol=0)


def test_batched_features_keep_the_fixture_ids(waves, expected):
    model = load_model(TINY_MODEL, device="cpu")
    feats = log_mel_batch([waves[u] for u in UIDS], numerics="transformers")
    results = model.transcribe([f.numpy() for f in feats])
    for uid, r in zip(UIDS, results):
        assert r.token_ids == expected[uid]["step1_ids"]


def test_batched_features_refuse_what_log_mel_refuses():
    with pytest.raises(ValueError, match="too short"):
        log_mel_batch([np.zeros(399, np.float32)])
    with pytest.raises(ValueError, match="1-D"):
        log_mel_batch([np.zeros((2, 800), np.float32)])
    assert log_mel_batch([]) == []
