"""jobs.evaluate end to end on the tiny model: WER recomputed independently, failures, dataset flags."""

import json

import pyarrow.parquet as pq
import pytest

from jobs.evaluate import main
from tests.jobs.eval_data import HYPOTHESES, MODEL_ARGS, expected_wer_percent, write_hf_parquet, write_manifest

REFS = {"a02": "Near a pear.", "a03_twoblocks": "while I ill last", "a04": "village river in road",
        "a05": "other village"}


def test_report_matches_an_independent_kaldialign_score(ray_session, tmp_path):
    src = write_manifest(tmp_path / "set", list(REFS.items()))
    out = tmp_path / "eval"
    assert main(["--dataset", f"plain={src}", "--output", str(out), *MODEL_ARGS]) == 0
    report = json.loads((out / "report.json").read_text())
    plain = report["datasets"]["plain"]
    want = expected_wer_percent([(REFS[u], HYPOTHESES[u]) for u in REFS])
    assert plain["wer_percent"] == want
    assert report["mean_wer_percent"] == want and report["failed_datasets"] == []
    assert (plain["utterances"], plain["failed"], plain["dropped_unscorable"]) == (4, 0, 0)
    rows = pq.read_table(out / "plain").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(REFS)
    # The score stage's per-row counts (what jobs.transcribe writes) add up to the report's figure.
    assert (sum(r["wer_errors"] for r in rows), sum(r["wer_words"] for r in rows)) == \
        (plain["word_errors"], plain["reference_words"])
    assert (plain["track"], plain["language"], plain["normalizer"]) == ("custom", "en", "leaderboard")
    # the profile that ran is named, resolved from the native checkpoint (not "the checkpoint's own")
    assert (report["numerics"], report["settings"]["numerics"]) == ("transformers", "transformers")
    assert {r["numerics"] for r in rows} == {"transformers"}
    timed = sum(r["features_seconds"] + r["infer_seconds"] for r in rows)
    assert plain["rtfx"] == round(sum(r["duration_s"] for r in rows) / timed, 2)
    md = (out / "report.md").read_text().splitlines()
    header = md.index(next(line for line in md if line.startswith("| model ")))
    assert [c.strip() for c in md[header].strip("|").split("|")] == ["model", "Average WER", "leaderboard RTFx", "plain"]
    assert [c.strip() for c in md[header + 2].strip("|").split("|")] == [
        report["model"], f"{want:.2f}", f"{plain['rtfx']:.2f}", f"{want:.2f}"]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unscorable_reference_dropped_before_inference(ray_session, tmp_path):
    # Needs run_transcribe to honour TranscribeConfig.reference_filter (the ingest work).
    # "[laughter]" and "um [noise]" normalise to nothing ("..." would not: it normalises to ".").
    src = write_manifest(tmp_path / "set", [("a02", "near"), ("a03_twoblocks", "[laughter]"), ("a04", "um [noise]")])
    out = tmp_path / "eval"
    assert main(["--dataset", f"s={src}", "--output", str(out), *MODEL_ARGS]) == 0
    report = json.loads((out / "report.json").read_text())["datasets"]["s"]
    assert (report["utterances"], report["dropped_unscorable"]) == (1, 2)
    assert [r["id"] for r in pq.read_table(out / "s").to_pylist()] == ["a02"]
    assert json.loads((out / "s" / "_summary.json").read_text())["dropped_unscorable"] == 2


def test_every_row_failed_exits_non_zero_with_one_line(ray_session, tmp_path, capsys):
    good = write_manifest(tmp_path / "good", [("a02", "near")])
    bad = tmp_path / "bad"
    (bad / "audio").mkdir(parents=True)
    for name in ("x1", "x2"):
        (bad / "audio" / f"{name}.flac").write_bytes(b"not audio at all" * 10)
    (bad / "m.jsonl").write_text("".join(json.dumps({"id": n, "audio_filepath": f"audio/{n}.flac", "text": "hello"})
                                         + "\n" for n in ("x1", "x2")))
    out = tmp_path / "eval"
    code = main(["--dataset", f"good={good}", "--dataset", f"broken={bad / 'm.jsonl'}", "--output", str(out),
                 *MODEL_ARGS])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: dataset broken: no successful row (2 failed, 0 dropped as unscorable)"
    report = json.loads((out / "report.json").read_text())
    assert report["failed_datasets"] == ["broken"]
    assert report["datasets"]["broken"]["wer_percent"] is None
    assert report["datasets"]["broken"]["failed"] == 2 and report["datasets"]["broken"]["reference_words"] == 2
    good_wer = expected_wer_percent([("near", HYPOTHESES["a02"])])
    assert report["mean_wer_percent"] == good_wer == report["datasets"]["good"]["wer_percent"]
    assert not any(line.replace(" ", "").startswith("|broken|failed|failed|")
                   for line in (out / "report.md").read_text().splitlines())
    assert "* **broken**: no successful row" in (out / "report.md").read_text()


def test_parquet_without_id_column_and_sentence_text(ray_session, tmp_path):
    rows = [("a02", "near a pear"), ("a04", "village road")]
    shard = write_hf_parquet(tmp_path / "hf" / "test-00000-of-00001.parquet", rows, text_column="sentence",
                             with_id=False)
    out = tmp_path / "eval"
    assert main(["--dataset", f"noid={shard.parent}", "--output", str(out), *MODEL_ARGS]) == 0
    got = {r["id"]: r for r in pq.read_table(out / "noid").to_pylist()}
    assert sorted(got) == ["test-00000-of-00001/0", "test-00000-of-00001/1"]
    assert got["test-00000-of-00001/1"]["reference"] == "village road"
    report = json.loads((out / "report.json").read_text())
    assert report["datasets"]["noid"]["wer_percent"] == expected_wer_percent(
        [(ref, HYPOTHESES[uid]) for uid, ref in rows])


def test_errors_name_evaluate_flags(tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["--dataset", f"gone={tmp_path / 'nowhere'}", "--output", str(out), *MODEL_ARGS])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: dataset gone: '{tmp_path / 'nowhere'}' does not exist") and "--input" not in err
    assert main(["--output", str(out), *MODEL_ARGS]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: give at least one --dataset NAME=URI or --datasets FILE (or --datasets leaderboard)")
    assert main(["--datasets", "no-such-board", "--output", str(out), *MODEL_ARGS]) == 2
    assert "error: --datasets no-such-board: cannot read it" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--dataset", "a=b", "--output", str(out), "--normalizer", "english"])
