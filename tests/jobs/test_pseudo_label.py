"""Pseudo-labelling: the disagreement score, the filter rules, and the job's training-ready outputs."""

import json

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jobs.pseudo_label import main
from pipeline.pseudo_label.filters import Filters, decide, draft_disagreement
from pipeline.scoring import make_normalizer
from tests.model.conftest import TINY

norm = make_normalizer("english")


@pytest.mark.parametrize("draft,final,value", [
    ("the cat sat", "the cat sat", 0.0),
    ("the cat sat", "the cat sat down", 0.25),
    ("a b c d", "w x y z", 1.0),
    ("", "", 0.0),
    ("", "hello", 1.0),
])
def test_draft_disagreement(draft, final, value):
    assert draft_disagreement(draft, final, norm) == pytest.approx(value)


def row(**kw):
    base = {"error": None, "text": "red green blue", "duration_s": 5.0, "confidence": 0.9,
            "draft_disagreement": 0.1, "reference": None}
    return {**base, **kw}


@pytest.mark.parametrize("r,reason", [
    (row(), None),
    (row(error="undecodable audio"), "error"),
    (row(text=""), "empty_text"),
    (row(duration_s=0.5), "too_short"),
    (row(duration_s=50.0), "too_long"),
    (row(confidence=0.5), "low_confidence"),
    (row(draft_disagreement=0.6), "draft_disagreement"),
    (row(reference="red green yellow orange"), "wer_vs_existing"),
    (row(reference="red green blue"), None),
])
def test_rules(r, reason):
    filters = Filters(min_confidence=0.8, max_draft_disagreement=0.5, min_duration_s=1.0, max_duration_s=30.0,
                      max_wer=0.3)
    assert decide(r, filters, norm) == (reason is None, reason)


def test_job_outputs(tmp_path):
    out = tmp_path / "pl"
    code = main(["--input", str(TINY / "manifest.jsonl"), "--output", str(out), "--model", str(TINY),
                 "--device", "cpu", "--min-confidence", "0.0046", "--max-draft-disagreement", "0.9",
                 "--min-duration", "1.0", "--with-audio"])
    assert code == 0
    scored = pq.read_table(out / "scored").to_pylist()
    assert len(scored) == 6
    kept = [r for r in scored if r["keep"]]
    for r in scored:
        assert r["keep"] == (r["reject_reason"] is None)
        if r["keep"]:
            assert r["confidence"] >= 0.0046 and r["draft_disagreement"] <= 0.9 and r["duration_s"] >= 1.0
    reasons = {r["id"]: r["reject_reason"] for r in scored}
    assert reasons["a01_short"] == "empty_text" and reasons["a02"] == "too_short"
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert summary["kept"] == len(kept) and summary["rows"] == 6
    assert sum(summary["rejected_by"].values()) == 6 - len(kept)
    hf = pq.read_table(out / "kept").to_pylist()
    assert [r["id"] for r in hf] == [r["id"] for r in kept]
    for r in hf:  # the audio bytes are carried through and decode to the original clip
        original, _ = sf.read(TINY / "audio" / f"{r['id']}.flac", dtype="float32")
        carried, _ = sf.read(__import__("io").BytesIO(r["audio"]["bytes"]), dtype="float32")
        assert (carried == original).all()
    manifest = [json.loads(x) for x in (out / "kept_manifest.jsonl").read_text().splitlines()]
    assert [m["text"] for m in manifest] == [r["text"] for r in kept]
    assert all(m["audio_filepath"].endswith(".flac") for m in manifest)
    assert (out / "histograms.png").read_bytes()[:4] == b"\x89PNG"
