"""Evaluation: WER on hand-checked pairs, chunk joining, and a report recomputed from its Parquet."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from jobs.evaluate import main
from pipeline.evaluation.evaluate import DatasetSpec, join_chunks, load_dataset_file, parse_dataset_arg, score_rows
from pipeline.scoring import make_normalizer, word_errors
from tests.model.conftest import TINY

english = make_normalizer("english")


@pytest.mark.parametrize("ref,hyp,errors,words", [
    ("the cat sat on the mat", "the cat sat on the mat", 0, 6),
    ("the cat sat on the mat", "the cat sat on mat", 1, 6),          # one deletion
    ("the cat sat", "a cat sat down", 2, 3),                         # substitution + insertion
    ("Hello, World!", "hello world", 0, 2),                          # punctuation and casing
    ("I can't go", "I can not go", 0, 4),                            # contraction: can't -> can not
    ("it costs twenty five dollars", "it costs $25", 0, 3),          # spelled-out number -> "$25"
    ("Mr. Smith arrived", "mister smith arrived", 0, 3),             # title abbreviation
    ("colour", "color", 0, 1),                                       # British spelling
])
def test_english_normaliser_wer(ref, hyp, errors, words):
    assert word_errors(ref, hyp, english) == (errors, words)


def test_basic_and_none_normalisers_differ_on_case():
    assert word_errors("Hello world", "hello world", make_normalizer("none")) == (1, 2)
    assert word_errors("Hello world", "hello world", make_normalizer("basic")) == (0, 2)


def test_scoring_skips_empty_references_and_errors():
    rows = [
        {"id": "a", "text": "red green", "reference": "red green blue", "duration_s": 1.0, "error": None},
        {"id": "b", "text": "x", "reference": "uh, um", "duration_s": 2.0, "error": None},  # fillers: normalises to empty
        {"id": "c", "text": None, "reference": "cyan", "duration_s": None, "error": "undecodable audio"},
        {"id": "d", "text": "alpha beta", "reference": "alpha gamma", "duration_s": 1.5, "error": None},
    ]
    s = score_rows(rows, "english")
    assert (s["word_errors"], s["reference_words"]) == (2, 5)
    assert s["wer"] == pytest.approx(0.4)
    assert (s["scored"], s["empty_references"], s["failed"], s["utterances"]) == (2, 1, 1, 4)
    assert s["audio_seconds"] == pytest.approx(4.5)


def test_chunks_join_in_chunk_order():
    rows = [
        {"id": "p1-c2", "text": "world", "reference": "world", "duration_s": 1.0, "error": None},
        {"id": "p1-c0", "text": "hello", "reference": "hello", "duration_s": 2.0, "error": None},
        {"id": "p1-c1", "text": "there", "reference": "dear", "duration_s": 1.5, "error": None},
        {"id": "p2-c0", "text": "solo", "reference": "solo", "duration_s": 0.5, "error": None},
    ]
    index = {"p1-c0": ("p1", 0), "p1-c1": ("p1", 1), "p1-c2": ("p1", 2), "p2-c0": ("p2", 0)}
    joined = {r["id"]: r for r in join_chunks(rows, index)}
    assert joined["p1"]["text"] == "hello there world"
    assert joined["p1"]["reference"] == "hello dear world"
    assert joined["p1"]["duration_s"] == pytest.approx(4.5) and joined["p1"]["chunks"] == 3
    assert joined["p2"]["text"] == "solo"
    # Scored per parent: one substitution among 3 + 1 words.
    assert score_rows(list(joined.values()), "english")["wer"] == pytest.approx(0.25)


def test_dataset_arguments(tmp_path):
    assert parse_dataset_arg("ls=s3://b/x/") == DatasetSpec("ls", "s3://b/x/")
    f = tmp_path / "d.yaml"
    f.write_text("datasets:\n  - {name: a, uri: x/, text_column: sentence}\n  - {name: b, uri: y.jsonl}\n")
    specs = load_dataset_file(str(f))
    assert [s.name for s in specs] == ["a", "b"] and specs[0].text_column == "sentence"
    f.write_text("datasets:\n  - {name: a, uri: x/, colour: red}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_dataset_file(str(f))


def test_evaluate_job_report_matches_parquet(tmp_path):
    # A chunked copy of the fixture manifest: a03..a06 are chunks of two parents.
    src = tmp_path / "fx"
    shutil.copytree(TINY / "audio", src / "audio")
    lines = [json.loads(x) for x in (TINY / "manifest.jsonl").read_text().splitlines()]
    chunked = []
    for i, row in enumerate(lines):
        chunked.append({**row, "parent_id": "long1" if i % 2 else "long2", "chunk_index": i})
    (src / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (src / "chunked.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chunked))
    (tmp_path / "sets.yaml").write_text(
        f"datasets:\n  - {{name: chunked, uri: {src / 'chunked.jsonl'}, parent_column: parent_id, chunk_column: chunk_index}}\n")
    out = tmp_path / "eval"
    code = main(["--dataset", f"plain={src / 'manifest.jsonl'}", "--datasets", str(tmp_path / "sets.yaml"),
                 "--output", str(out), "--model", str(TINY), "--device", "cpu"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["datasets"]) == {"plain", "chunked"}
    # Recompute the plain set's WER independently from its Parquet rows.
    rows = pq.read_table(out / "plain").to_pylist()
    assert len(rows) == len(lines) and all(r["error"] is None for r in rows)
    errors = words = 0
    for r in rows:
        e, w = word_errors(r["reference"], r["text"], english)
        errors, words = errors + e, words + w
    plain = report["datasets"]["plain"]
    assert plain["wer"] == pytest.approx(errors / words)
    assert plain["utterances"] == len(lines)
    assert plain["audio_seconds"] == pytest.approx(sum(r["duration"] for r in lines), abs=1e-3)
    # The chunked set is scored per parent: two utterances, references joined in chunk order.
    chunked_report = report["datasets"]["chunked"]
    assert chunked_report["utterances"] == 2
    by_id = {r["id"]: r for r in pq.read_table(out / "chunked").to_pylist()}
    parents = join_chunks(list(by_id.values()), {r["id"]: (r["parent_id"], r["chunk_index"]) for r in chunked})
    assert chunked_report["wer"] == pytest.approx(score_rows(parents, "english")["wer"])
    assert report["mean_wer"] == pytest.approx((plain["wer"] + chunked_report["wer"]) / 2)
    timed = [r["features_seconds"] + r["infer_seconds"] for r in rows]
    assert all(t > 0 for t in timed)
    assert plain["rtfx_model"] == pytest.approx(sum(r["duration_s"] for r in rows) / sum(timed))
    assert plain["rtfx_model"] > plain["rtfx"] > 0  # model time excludes Ray start-up and scheduling
    md = (out / "report.md").read_text()
    assert "| plain | 6 |" in md and "| chunked | 2 |" in md and "report.png" in md
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
