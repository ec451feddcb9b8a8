"""The model against the reference's own outputs, for both weight layouts."""

import numpy as np
import pytest

UTTERANCES = ["a01_short", "a02", "a03_twoblocks", "a04", "a05", "a06_long"]


@pytest.mark.parametrize("uid", UTTERANCES)
def test_encoder_and_projector_match(tiny_model, features, expected, expected_arrays, uid):
    enc = tiny_model.encode([features[uid]])
    np.testing.assert_allclose(enc.encoder.hidden_cat.numpy(), expected_arrays[f"{uid}/encoder_hidden_cat"], atol=2e-4, rtol=0)
    np.testing.assert_allclose(enc.encoder.pooled.numpy(), expected_arrays[f"{uid}/encoder_pooled"], atol=2e-4, rtol=0)
    np.testing.assert_allclose(enc.encoder.mid_logits.numpy(), expected_arrays[f"{uid}/encoder_mid_logits"], atol=2e-4, rtol=0)
    n_audio = expected[uid]["num_audio_tokens"]
    np.testing.assert_allclose(enc.audio_embeds.numpy(), expected_arrays[f"{uid}/audio_embeds"][:n_audio], atol=2e-4, rtol=0)
    assert enc.drafts == [expected[uid]["draft_ids"]]


@pytest.mark.parametrize("uid", UTTERANCES)
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_editing_steps_match(tiny_model, features, expected, expected_arrays, uid, steps):
    [result] = tiny_model.transcribe([features[uid]], steps, return_logits=True)
    ref = expected[uid]
    assert result.draft_ids == ref["draft_ids"]
    assert result.draft_text == ref["draft_text"]
    assert result.token_ids == ref[f"step{steps}_ids"]
    assert result.text == ref[f"step{steps}_text"]
    assert result.logits.shape == (ref[f"step{steps}_seq_len"], 512)
    np.testing.assert_allclose(result.logits, expected_arrays[f"{uid}/step{steps}_logits"], atol=1e-4, rtol=0)


def test_whole_set_in_one_call_equals_each_alone(native_model, features):
    uids = list(features)
    together = native_model.transcribe([features[u] for u in uids], 2, return_logits=True)
    for uid, res in zip(uids, together):
        [alone] = native_model.transcribe([features[uid]], 2, return_logits=True)
        assert res.token_ids == alone.token_ids
        assert res.draft_ids == alone.draft_ids
        np.testing.assert_allclose(res.logits, alone.logits, atol=1e-5, rtol=0)
        assert res.confidence == pytest.approx(alone.confidence, abs=1e-6)


def test_order_and_company_do_not_matter(native_model, features, expected):
    order = ["a06_long", "a01_short", "a04", "a04", "a02"]
    results = native_model.transcribe([features[u] for u in order])
    assert [r.token_ids for r in results] == [expected[u]["step1_ids"] for u in order]


def test_confidence_definition(native_model, features):
    [res] = native_model.transcribe([features["a05"]], return_logits=True)
    logits = res.logits.astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    assert 0.0 < res.confidence <= 1.0
    assert res.confidence == pytest.approx(float(np.exp(logp.max(-1).mean())), rel=1e-5)


def test_empty_draft_still_has_a_confidence(native_model, features, expected):
    [res] = native_model.transcribe([features["a01_short"]])
    assert expected["a01_short"]["draft_ids"] == [] and res.token_ids == []
    assert res.text == ""
    assert 0.0 < res.confidence <= 1.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_editing_steps_validated(native_model, features, bad):
    with pytest.raises(ValueError, match="editing_steps"):
        native_model.transcribe([features["a02"]], bad)


def test_bad_feature_shape(native_model):
    with pytest.raises(ValueError, match=r"\[T >= 1, 160\]"):
        native_model.transcribe([np.zeros((10, 80), dtype=np.float32)])
    assert native_model.transcribe([]) == []
