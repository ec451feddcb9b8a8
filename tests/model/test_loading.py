"""Config parsing, weight loading and the errors a user sees when a checkpoint is wrong."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import ConfigError, ModelNotFoundError, NarConfig, WeightError, build_model, load_model

from .conftest import FIXTURES, TINY, TINY_ORIGINAL

REAL = FIXTURES / "real-config"


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("layout", ["native", "original"])
def test_real_dimensions_build_on_meta(layout):
    cfg = NarConfig.from_file(REAL / layout / "config.json")
    assert cfg.layout == layout
    assert cfg.encoder.cat_hidden_layers == (4, 8, 12)
    assert cfg.encoder.vocabulary_size == cfg.text.vocab_size == 100352
    assert cfg.text.rope_theta == 10000.0 and cfg.blank_token_id == 100257
    model = build_model(cfg)
    assert all(p.is_meta for p in model.parameters())
    assert count(model) == 2_254_541_148
    assert count(model.model.encoder) == 440_168_796
    assert count(model.model.out_bpe) == 102_860_800
    assert count(model.model.projector) == 79_761_408
    assert count(model.model.language_model) == 1_631_750_144


def test_both_layouts_give_the_same_config():
    native = NarConfig.from_file(TINY / "config.json")
    original = NarConfig.from_file(TINY_ORIGINAL / "config.json")
    assert (native.layout, original.layout) == ("native", "original")
    assert native.encoder == original.encoder
    assert native.projector == original.projector
    assert native.text == original.text
    assert native.encoder.cat_hidden_layers == (1, 2, 3)
    assert native.projector.intermediate_size == original.projector.intermediate_size == 192


def test_both_layouts_load_identical_weights():
    a = load_model(TINY, device="cpu").state_dict()
    b = load_model(TINY_ORIGINAL, device="cpu").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_model_metadata():
    m = load_model(str(TINY), device="cpu", dtype="float32")
    assert m.name == str(TINY)
    assert m.device.type == "cpu" and m.dtype == torch.float32
    assert not m.training


def copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


def edit_config(folder, fn):
    raw = json.loads((folder / "config.json").read_text())
    fn(raw)
    (folder / "config.json").write_text(json.dumps(raw))


def test_unknown_model_type_refused(tmp_path):
    folder = copy_checkpoint(TINY, tmp_path / "ck")
    edit_config(folder, lambda c: c.update(model_type="whisper"))
    with pytest.raises(ConfigError, match="'model_type' = 'whisper'"):
        load_model(folder, device="cpu")


def test_missing_config_key_named(tmp_path):
    folder = copy_checkpoint(TINY, tmp_path / "ck")
    edit_config(folder, lambda c: c.pop("projector_config"))
    with pytest.raises(ConfigError, match="projector_config"):
        load_model(folder, device="cpu")


def test_mixed_layout_refused(tmp_path):
    folder = copy_checkpoint(TINY, tmp_path / "ck")
    edit_config(folder, lambda c: c.update(encoder_layer_indices=[1, 2, 3, -1]))
    with pytest.raises(ConfigError, match="mixes"):
        load_model(folder, device="cpu")


def test_rope_theta_keys_both_accepted():
    raw = json.loads((TINY / "config.json").read_text())
    raw["text_config"].pop("rope_parameters")
    raw["text_config"]["rope_theta"] = 5000.0
    assert NarConfig.from_dict(raw).text.rope_theta == 5000.0


def test_missing_and_wrong_shape_reported_together(tmp_path):
    folder = copy_checkpoint(TINY, tmp_path / "ck")
    tensors = load_file(folder / "model.safetensors")
    tensors.pop("model.encoder.layers.0.attn.to_q.weight")
    tensors["model.out_bpe.bias"] = torch.zeros(7)
    tensors["model.extra.weight"] = torch.zeros(1)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(WeightError) as err:
        load_model(folder, device="cpu")
    msg = str(err.value)
    assert "missing keys (1): model.encoder.layers.0.attn.to_q.weight" in msg
    assert "unexpected keys (1): model.extra.weight" in msg
    assert "model.out_bpe.bias: checkpoint (7,) vs model (512,)" in msg


def test_sharded_checkpoint_loads(tmp_path, features, expected):
    folder = tmp_path / "sharded"
    folder.mkdir()
    for f in TINY.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, folder / f.name)
    tensors = load_file(TINY / "model.safetensors")
    keys = sorted(tensors)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for name, ks in shards.items():
        save_file({k: tensors[k] for k in ks}, folder / name)
        weight_map.update({k: name for k in ks})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    m = load_model(folder, device="cpu")
    [res] = m.transcribe([features["a04"]])
    assert res.token_ids == expected["a04"]["step1_ids"]


def test_pickle_only_folder_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(TINY / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(WeightError, match="only pickle weights.*pytorch_model.bin.*refused"):
        load_model(folder, device="cpu")


def test_non_identity_original_norm_refused(tmp_path):
    folder = copy_checkpoint(TINY_ORIGINAL, tmp_path / "ck")
    tensors = load_file(folder / "model.safetensors")
    key = next(k for k in tensors if "layer_norms.0.weight" in k)
    tensors[key] = tensors[key] * 1.5
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(WeightError, match=key.replace(".", r"\.")):
        load_model(folder, device="cpu")


def test_auto_map_is_never_executed(tmp_path, hub_features, hub_expected):
    folder = copy_checkpoint(TINY_ORIGINAL, tmp_path / "ck")
    (folder / "modeling_granite_speech_nar.py").write_text("raise SystemExit('remote code ran')\n")
    m = load_model(folder, device="cpu")
    assert m.numerics == "hub"
    assert m.transcribe([hub_features["a02"]])[0].token_ids == hub_expected["a02"]["step1_ids"]


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(tmp_path, device="cpu")
    with pytest.raises(ModelNotFoundError, match="neither an existing folder nor a hub id"):
        load_model(tmp_path / "nope", device="cpu")


def test_unreachable_hub_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache.*--model tests/fixtures/granite-nar-tiny"):
        load_model("ibm-granite/granite-speech-4.1-2b-nar", device="cpu")


@pytest.mark.parametrize("bad", ["int8", "float64"])
def test_bad_dtype(bad):
    with pytest.raises(ValueError, match="dtype"):
        load_model(TINY, device="cpu", dtype=bad)
