"""A chunked set in the leaderboard's layout (chunk table + parent table), CSV and Parquet, ids like 0001."""

import json
import shutil

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from jobs.evaluate import main
from tests.jobs.eval_data import AUDIO, HYPOTHESES, MODEL_ARGS, expected_wer_percent

# (file_name, parent_id, chunk_index, fixture utterance), listed out of order on purpose.
CHUNKS = [("0001-2.flac", "0001", 2, "a03_twoblocks"), ("0001-0.flac", "0001", 0, "a02"),
          ("0002-0.flac", "0002", 0, "a05"), ("0001-3.flac", "0001", 3, "a04"),
          ("0001-1.flac", "0001", 1, "a01_short"), ("0003-0.flac", "0003", 0, "a06_long")]
PARENTS = {"0001": "Near a pear, while I ill last; the village river in road.", "0002": "other village",
           "0003": "[noise]", "0004": "never transcribed"}


def build_chunked_set(root, fmt: str):
    (root / "audio").mkdir(parents=True)
    for file, _, _, uid in CHUNKS:
        shutil.copy(AUDIO / f"{uid}.flac", root / "audio" / file)
    chunks = pa.table({"file_name": [c[0] for c in CHUNKS], "parent_id": [c[1] for c in CHUNKS],
                       "chunk_index": [c[2] for c in CHUNKS]})
    parents = pa.table({"id": list(PARENTS), "text": list(PARENTS.values())})
    for name, table in (("chunks", chunks), ("parents", parents)):
        if fmt == "csv":
            pacsv.write_csv(table, root / f"{name}.csv")
        else:
            pq.write_table(table, root / f"{name}.parquet")
    sets = root / "sets.yaml"
    sets.write_text(
        "root: " + str(root) + "\ndatasets:\n"
        f"  - {{name: calls, uri: '{{root}}/chunks.{fmt}', parents_uri: '{{root}}/parents.{fmt}', "
        "audio_root: '{root}/audio'}\n")
    return sets


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunks_joined_per_parent_and_scored_once(ray_session, tmp_path, fmt):
    sets = build_chunked_set(tmp_path / "set", fmt)
    out = tmp_path / "eval"
    assert main(["--datasets", str(sets), "--output", str(out), *MODEL_ARGS]) == 0
    calls = json.loads((out / "report.json").read_text())["datasets"]["calls"]
    # Every chunk of the scorable parents went through the model as it is; 0003 ("[noise]") never did.
    rows = {r["id"]: r for r in pq.read_table(out / "calls").to_pylist()}
    assert sorted(rows) == sorted(c[0] for c in CHUNKS if c[1] != "0003")
    # A chunk is scored only as part of its parent: its row carries no (repeated) reference.
    assert all(r["error"] is None and r["reference"] is None and r["wer_words"] is None for r in rows.values())
    joined = {p: " ".join(t for c in sorted((c for c in CHUNKS if c[1] == p), key=lambda c: c[2])
                          if (t := HYPOTHESES[c[3]].strip())) for p in ("0001", "0002")}
    assert HYPOTHESES["a01_short"] == "" and joined["0001"].count("  ") == 0
    want = expected_wer_percent([(PARENTS[p], joined[p]) for p in ("0001", "0002")])
    assert calls["wer_percent"] == want
    # Per-chunk references or table order would give another number.
    assert want != expected_wer_percent([(PARENTS[c[1]], HYPOTHESES[c[3]]) for c in CHUNKS if c[1] != "0003"])
    assert (calls["utterances"], calls["chunks"], calls["dropped_unscorable"], calls["failed"]) == (2, 5, 1, 0)
    manifest = (out / "_inputs" / "calls.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in manifest] == [c[0] for c in CHUNKS if c[1] != "0003"]
