"""Which numerics profile the driver hands to the decode tasks and the actors, and what the decode
tasks do with it (pure functions, no Ray): features of that profile, and inputs with no frame
under it become error rows."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from model import log_mel
from pipeline.config import ConfigError
from pipeline.model_ref import ModelSpec, ModelUnavailable
from pipeline.numerics import resolve_numerics
from pipeline.sinks.schema import output_schema
from pipeline.sources.items import file_item
from pipeline.stages.decode import DecodeSettings
from pipeline.stages.prepare import decode_batch
from pipeline.storage import Storage
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL

ORIGINAL_LAYOUT = REPO / "tests" / "fixtures" / "granite-nar-tiny-original"


def test_the_checkpoint_decides_unless_told():
    for folder, own in ((TINY_MODEL, "transformers"), (ORIGINAL_LAYOUT, "hub")):
        spec = ModelSpec(str(folder))
        assert resolve_numerics(spec, None).numerics == own
        assert resolve_numerics(spec, "hub").numerics == "hub"
        assert resolve_numerics(spec, "transformers").numerics == "transformers"
        assert resolve_numerics(ModelSpec(str(folder), numerics="hub"), None).numerics == "hub"
    with pytest.raises(ConfigError, match="--numerics: numerics 'exact' is not one of hub, transformers"):
        resolve_numerics(ModelSpec(str(TINY_MODEL)), "exact")


def test_unreadable_checkpoint_config_is_a_config_error(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=f"--model {folder}: cannot read model config"):
        resolve_numerics(ModelSpec(str(folder)), None)


def test_uncached_hub_model_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelUnavailable, match="its config.json .* cannot be fetched .*--numerics hub"):
        resolve_numerics(ModelSpec("ibm-granite/granite-speech-4.1-2b-nar", "99a4df9"), None)
    # Told which profile, the config is not needed.
    assert resolve_numerics(ModelSpec("ibm-granite/granite-speech-4.1-2b-nar"), "hub").numerics == "hub"


def wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16_000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_decode_tasks_compute_the_profiles_features(tmp_path):
    rng = np.random.default_rng(0)
    files = {"a02": (TINY_AUDIO / "a02.flac").read_bytes(),
             "n319": wav_bytes(rng.standard_normal(319).astype(np.float32) * 0.1),
             "n350": wav_bytes(rng.standard_normal(350).astype(np.float32) * 0.1)}
    for name, data in files.items():
        (tmp_path / f"{name}.wav").write_bytes(data)
    items = pa.Table.from_pylist([file_item(name, str(tmp_path / f"{name}.wav")) for name in files])
    wave, _ = sf.read(TINY_AUDIO / "a02.flac", dtype="float32")
    for numerics in ("hub", "transformers"):
        rows = {r["id"]: r for r in decode_batch(items, storage=Storage.from_env(),
                                                  settings=DecodeSettings(numerics=numerics),
                                                  with_audio=False).to_pylist()}
        feats = np.frombuffer(rows["a02"]["features"], np.float32).reshape(rows["a02"]["num_frames"], 160)
        np.testing.assert_array_equal(feats, log_mel(wave, numerics=numerics))
        assert rows["a02"]["num_frames"] == (47 if numerics == "hub" else 48)
        # Under 20 ms there is no hub frame; under 25 ms no PR analysis window: error rows.
        assert rows["n319"]["error"] == ("too short or invalid for features: audio too short: 319 samples; at "
                                         + ("least 320 (20 ms) are needed under hub numerics (N // 320 frames)"
                                            if numerics == "hub" else "least 400 (25 ms) are needed"))
        assert (rows["n350"]["error"] is None) == (numerics == "hub")
        if numerics == "hub":
            assert rows["n350"]["num_frames"] == 1


def test_numerics_is_an_output_column():
    assert output_schema().field("numerics").type == pa.string()
