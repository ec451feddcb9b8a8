"""jobs.benchmark --timestamps word: the alignment's share of inference time, measured on the same packs."""

from bench.alignment import bench_alignment
from jobs.benchmark import parse_args
from model import load_model
from tests.conftest import TINY_MODEL


def test_alignment_share_is_measured_on_the_same_packs(features):
    model = load_model(TINY_MODEL, device="cpu")
    feats = [features[u] for u in ("a02", "a04", "a06_long")]
    result = bench_alignment(model, feats, budget=400)  # two packs
    assert len(result["alignment_share_runs"]) == 3
    assert 0 < result["alignment_seconds"] < result["alignment_inference_seconds"]
    assert result["alignment_share"] == sorted(result["alignment_share_runs"])[1]
    assert result["alignment_ok_fraction"] == 1.0
    assert parse_args(["--timestamps", "word"]).timestamps == "word"
