"""The benchmark keeps working end to end (tiny size, a handful of utterances; no timing asserts)."""

import json

from jobs.benchmark import main
from model import NarConfig, load_model, random_model
from bench.corpus import corpus_durations, native_config_dict, size_config, write_checkpoint
from bench.cost import packed_waste, padded_waste

KEYS = ["packed_rtfx", "padded_rtfx", "packed_vs_padded_speedup", "padding_waste_packed", "padding_waste_padded",
        "pipeline_overhead", "scaling_time_ratio", "scaling_rss_ratio", "features_rtf_per_core"]


def test_corpus_is_seeded_and_librispeech_like():
    a, b = corpus_durations(200, 3), corpus_durations(200, 3)
    assert a == b and a != corpus_durations(200, 4)
    assert sum(2 <= d <= 20 for d in a) / len(a) > 0.7
    assert max(a) <= 35 and min(a) >= 0.3 and any(d < 1 for d in a) and any(d > 20 for d in a)


def test_waste_accounting():
    cfg = size_config("small")
    lengths = [100, 500, 1000, 60]
    texts = [11, 41, 81, 5]
    # One utterance per pack has no pack padding; block/window padding remains but is small.
    assert 0 < packed_waste(cfg, lengths, texts) < 0.03
    # Padding [100, 500] to 500 and [1000, 60] to 1000 wastes (400 + 940) of 2660 frames' encoder work.
    assert 0.3 < padded_waste(cfg, lengths, texts, 2) < 0.6
    assert padded_waste(cfg, lengths, texts, 1) == packed_waste(cfg, lengths, texts)


def test_written_checkpoint_round_trips(tmp_path, features):
    model = random_model(size_config("tiny"), seed=5)
    folder = write_checkpoint(model, tmp_path / "ck")
    assert NarConfig.from_file(folder / "config.json") == NarConfig.from_dict(native_config_dict(model.config))
    loaded = load_model(folder, device="cpu")
    feats = [features["a04"], features["a02"]]
    assert [r.token_ids for r in loaded.transcribe(feats)] == [r.token_ids for r in model.transcribe(feats)]


def test_benchmark_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--size", "tiny", "--count", "4", "--scale-factor", "2", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(result[key], float), key
    assert result["corpus"]["count"] == 4 and result["corpus"]["seed"] == 0
    assert result["device"] == "cpu" and result["dtype"] == "float32" and result["size"] == "tiny"
    assert 0 <= result["padding_waste_packed"] < result["padding_waste_padded"] < 1
    assert result["padded_same_ids_fraction"] <= 1.0
    table = capsys.readouterr().out
    assert "packed / padded speed-up" in table and "pipeline overhead" in table
