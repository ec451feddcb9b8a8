"""The hub numerics profile against IBM's own code's outputs (``granite-nar-tiny-hub``), and the
profiles' switches on a checkpoint of other dimensions.

The fixture's logits are the raw ``lm_head`` output of the code it came from; revision 99a4df9 and
the PR both divide by ``logits_scaling``, and so does this model in both profiles, so the fixture is
compared after dividing.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from model import (
    ConfigError, NarConfig, checkpoint_numerics, get_numerics, load_model, log_mel, min_samples,
    num_feature_frames, random_model,
)
from model.weights import ORIGINAL_TO_NATIVE
from pipeline.stages.packing import plan_packs, restore_order

from .conftest import FIXTURES, TINY, TINY_ORIGINAL

UTTERANCES = ["a01_short", "a02", "a03_twoblocks", "a04", "a05", "a06_long"]
LOGITS_SCALING = 8.0   # text_config.logits_scaling of the tiny checkpoint
MIN_EDIT = 8           # its min_edit_sequence_length


def fixture_logits(hub_arrays, uid):
    return hub_arrays[f"{uid}/step1_logits"] / LOGITS_SCALING


def confidence_of(logits: np.ndarray) -> float:
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    return float(np.exp((-np.log(np.exp(z).sum(1))).mean()))


def test_hub_features_match_the_hub_extractor(waveforms, hub_expected, hub_arrays, hub_model):
    for uid, wave in waveforms.items():
        feats = log_mel(wave, numerics="hub")
        assert feats.dtype == np.float32
        frames = hub_expected[uid]["num_feature_frames"]
        assert frames == wave.size // 320 == num_feature_frames(wave.size, numerics="hub")
        assert feats.shape == hub_arrays[f"{uid}/features"].shape == (frames, 160)
        np.testing.assert_allclose(feats, hub_arrays[f"{uid}/features"], atol=1e-4, rtol=0)
        np.testing.assert_array_equal(hub_model.features(wave), feats)


def test_hub_frames_are_the_first_frames_normalised_over_themselves(waveforms):
    for wave in waveforms.values():   # the loudest frame is kept: the PR's features, one frame fewer
        hub, pr = log_mel(wave, numerics="hub"), log_mel(wave)
        assert pr.shape[0] == hub.shape[0] + 1
        np.testing.assert_array_equal(hub, pr[:-1])
    # A burst in the dropped tail: the PR normalises against it, the hub against what it keeps.
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16_150) * 0.01).astype(np.float32)
    wave[-120:] = 0.9
    hub, pr = log_mel(wave, numerics="hub"), log_mel(wave)
    assert (hub.shape[0], pr.shape[0]) == (50, 51)
    assert hub.max() < pr.max() - 0.5
    floored = pr[:-1] <= pr.min() + 1e-6   # under the PR's 80 dB floor (its maximum is the burst)
    assert 0 < floored.sum() < floored.size
    np.testing.assert_array_equal(hub[~floored], pr[:-1][~floored])
    # The hub's floor sits lower (its maximum is lower): what the PR floors, it keeps below that.
    assert (hub[floored] <= pr.min() + 1e-6).all() and (hub[floored] < pr.min() - 0.1).any()
    assert hub.min() >= hub.max() - 2.0 - 1e-6


@pytest.mark.parametrize("uid", UTTERANCES)
def test_hub_outputs_match_alone(hub_model, hub_features, hub_expected, hub_arrays, uid):
    [res] = hub_model.transcribe([hub_features[uid]], return_logits=True)
    ref = hub_expected[uid]
    assert res.draft_ids == ref["draft_ids"] and res.draft_text == ref["draft_text"]
    assert res.token_ids == ref["step1_ids"] and res.text == ref["step1_text"]
    assert res.logits.shape == (ref["step1_seq_len"], 512) == (max(2 * len(ref["draft_ids"]) + 1, MIN_EDIT), 512)
    assert res.positions == ref["step1_seq_len"]
    np.testing.assert_allclose(res.logits, fixture_logits(hub_arrays, uid), atol=1e-4, rtol=0)
    assert res.confidence == pytest.approx(confidence_of(fixture_logits(hub_arrays, uid)), abs=1e-6)


@pytest.mark.parametrize("budget", [150, 8000])
def test_hub_outputs_match_in_packs(hub_model, hub_features, hub_expected, hub_arrays, budget):
    feats = [hub_features[u] for u in UTTERANCES]
    packs = plan_packs([f.shape[0] for f in feats], budget)
    assert (len(packs) > 1) == (budget < 8000)
    results = restore_order(packs, [hub_model.transcribe([feats[i] for i in p], return_logits=True) for p in packs])
    for uid, res in zip(UTTERANCES, results):
        assert res.draft_ids == hub_expected[uid]["draft_ids"], uid
        assert res.token_ids == hub_expected[uid]["step1_ids"], uid
        assert res.text == hub_expected[uid]["step1_text"], uid
        np.testing.assert_allclose(res.logits, fixture_logits(hub_arrays, uid), atol=1e-4, rtol=0)


def test_the_profiles_of_each_layout():
    assert load_model(TINY_ORIGINAL, device="cpu").numerics == "hub"
    assert load_model(TINY, device="cpu").numerics == "transformers"
    assert load_model(TINY_ORIGINAL, device="cpu", numerics="transformers").numerics == "transformers"
    with pytest.raises(ValueError, match="numerics 'pr' is not one of hub, transformers"):
        load_model(TINY, device="cpu", numerics="pr")
    assert (checkpoint_numerics(TINY), checkpoint_numerics(TINY_ORIGINAL)) == ("transformers", "hub")
    assert checkpoint_numerics(TINY_ORIGINAL / "config.json") == "hub"
    assert checkpoint_numerics(TINY_ORIGINAL, "transformers") == "transformers"
    assert checkpoint_numerics(FIXTURES / "real-config" / "original") == "hub"
    assert checkpoint_numerics(FIXTURES / "real-config" / "native") == "transformers"
    with pytest.raises(ValueError, match="not one of"):
        checkpoint_numerics(TINY, "fast")
    assert str(get_numerics("hub")) == "hub"


def test_native_checkpoint_under_hub_numerics(hub_features, hub_expected):
    """The same weights in the native layout with numerics="hub" compute the hub's ids."""
    nar = load_model(TINY, device="cpu", numerics="hub")
    assert nar.numerics == "hub" and nar.min_edit_length == MIN_EDIT
    results = nar.transcribe([hub_features[u] for u in UTTERANCES])
    assert [r.token_ids for r in results] == [hub_expected[u]["step1_ids"] for u in UTTERANCES]


def test_later_editing_passes_under_hub(hub_model, hub_features, hub_expected):
    """editing_steps=2 re-slots the first pass's output with the hub's rule (at least 8 positions)."""
    feats = [hub_features[u] for u in UTTERANCES]
    together = hub_model.transcribe(feats, 2, return_logits=True)
    for uid, res in zip(UTTERANCES, together):
        first = hub_expected[uid]["step1_ids"]
        assert res.draft_ids == hub_expected[uid]["draft_ids"]
        assert res.positions == res.logits.shape[0] == max(2 * len(first) + 1, MIN_EDIT)
    for i in (0, 4):   # a01_short's 7 ids still slot to 15 positions; a05's 32 to 65
        [alone] = hub_model.transcribe([feats[i]], 2, return_logits=True)
        assert together[i].token_ids == alone.token_ids
        np.testing.assert_allclose(together[i].logits, alone.logits, atol=1e-5, rtol=0)


def test_short_inputs_under_hub(hub_model):
    assert min_samples("hub") == 320 and min_samples() == 400
    with pytest.raises(ValueError, match="too short: 319 samples; at least 320.*hub numerics"):
        log_mel(np.full(319, 0.01, np.float32), numerics="hub")
    with pytest.raises(ValueError, match="too short"):
        hub_model.features(np.full(100, 0.01, np.float32))
    for n in (320, 639, 640, 1000):
        assert log_mel(np.full(n, 0.01, np.float32), numerics="hub").shape == (n // 320, 160)
    # One frame: no audio token (1 // 5), one BPE window, a blank-padded edit sequence of 8.
    rng = np.random.default_rng(0)
    [res] = hub_model.transcribe([hub_model.features(rng.standard_normal(400).astype(np.float32) * 0.1)],
                                 return_logits=True)
    assert res.logits.shape[0] == max(2 * len(res.draft_ids) + 1, MIN_EDIT)


# A held-out-like checkpoint: other dimensions than the tiny fixture, in the original layout.
OTHER_DIMS = {
    "model_type": "granite_speech_nar",
    "encoder_layer_indices": [0, 2, -1],
    "min_edit_sequence_length": 5,
    "scale_projected_embeddings": True,
    "blank_token_id": 63,
    "encoder_config": {"input_dim": 160, "num_layers": 3, "hidden_dim": 32, "num_heads": 2, "dim_head": 16,
                       "output_dim": 7, "context_size": 16, "max_pos_emb": 20, "conv_kernel_size": 5,
                       "feedforward_mult": 2, "self_conditioning_layer": 2, "bpe_output_dim": 64,
                       "bpe_pooling_window": 2},
    "projector_config": {"hidden_size": 48, "num_layers": 1, "num_heads": 4, "block_size": 10,
                         "downsample_rate": 5, "mlp_ratio": 2, "layernorm_eps": 1e-6, "attn_bias": True},
    "text_config": {"model_type": "granite", "vocab_size": 64, "hidden_size": 48, "intermediate_size": 64,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
                    "attention_multiplier": 0.1, "embedding_multiplier": 6.0, "residual_multiplier": 0.5,
                    "logits_scaling": 2.0, "eos_token_id": 63, "tie_word_embeddings": True},
}


def to_original_name(key: str) -> str:
    key = key.replace(".cross_attn.", ".cross_attention.")
    for old, new in sorted(ORIGINAL_TO_NATIVE, key=lambda rule: -len(rule[1])):
        if key.startswith(new):
            return old + key[len(new):]
    return key


@pytest.fixture(scope="module")
def other_dims_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("other-dims")
    (folder / "config.json").write_text(json.dumps(OTHER_DIMS))
    shutil.copy(TINY / "tokenizer.json", folder / "tokenizer.json")
    nar = random_model(NarConfig.from_dict(OTHER_DIMS), seed=3, device="cpu")
    save_file({to_original_name(k): v.contiguous() for k, v in nar.state_dict().items()}, folder / "model.safetensors")
    return folder


def test_other_dims_config():
    cfg = NarConfig.from_dict(OTHER_DIMS)
    assert cfg.layout == "original"
    assert cfg.encoder.encoder_layer_indices == (0, 2, 3) and cfg.encoder.cat_hidden_layers == (0, 2)
    assert (cfg.min_edit_sequence_length, cfg.encoder.pooling_window) == (5, 2)
    raw = json.loads(json.dumps(OTHER_DIMS))
    raw["encoder_layer_indices"] = [2, 4]
    with pytest.raises(ConfigError, match="entry 4 is outside -4..3"):
        NarConfig.from_dict(raw)
    raw["encoder_layer_indices"] = [-1, 2]   # hub-only: no PR form (the final layer is not last)
    assert NarConfig.from_dict(raw).encoder.cat_hidden_layers is None
    with pytest.raises(ConfigError, match="does not end with the final layer.*numerics='hub'"):
        random_model(NarConfig.from_dict(raw), numerics="transformers", device="cpu")
    assert random_model(NarConfig.from_dict(raw), device="cpu").numerics == "hub"
    raw["encoder_layer_indices"], raw["min_edit_sequence_length"] = [0, -1], 0
    with pytest.raises(ConfigError, match="'min_edit_sequence_length' must be a positive integer"):
        NarConfig.from_dict(raw)


def test_other_dims_under_both_profiles(other_dims_checkpoint):
    hub = load_model(other_dims_checkpoint, device="cpu")
    pr = load_model(other_dims_checkpoint, device="cpu", numerics="transformers")
    assert (hub.numerics, pr.numerics) == ("hub", "transformers")
    rng = np.random.default_rng(1)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (700, 3200, 9000, 16000)]
    for nar in (hub, pr):
        feats = [nar.features(w) for w in waves]
        assert [f.shape[0] for f in feats] == [num_feature_frames(w.size, numerics=nar.numerics) for w in waves]
        together = nar.transcribe(feats, 2, return_logits=True)
        for feat, res in zip(feats, together):
            [alone] = nar.transcribe([feat], 2, return_logits=True)
            assert res.token_ids == alone.token_ids and res.draft_ids == alone.draft_ids
            np.testing.assert_allclose(res.logits, alone.logits, atol=1e-5, rtol=0)
        [one] = nar.transcribe([feats[0]], return_logits=True)
        assert one.logits.shape[0] == max(2 * len(one.draft_ids) + 1, 5 if nar is hub else 1)
    # Switch 3 alone, on the same features: only the self-conditioning layer's slice (layer 2, the
    # second of the exported [0, 2, final]) of the projector input differs; the drafts agree.
    feats = [pr.features(w) for w in waves]
    a, b = hub.encode(feats), pr.encode(feats)
    assert a.drafts == b.drafts
    width = 32
    torch.testing.assert_close(a.encoder.hidden_cat[:, :width], b.encoder.hidden_cat[:, :width], rtol=0, atol=0)
    torch.testing.assert_close(a.encoder.hidden_cat[:, 2 * width:], b.encoder.hidden_cat[:, 2 * width:], rtol=0, atol=0)
    assert not torch.allclose(a.encoder.hidden_cat[:, width:2 * width], b.encoder.hidden_cat[:, width:2 * width])
