"""What the job writes, read back from storage, against the output contract in design.md: column
names and Arrow types of every data file (local and S3, with and without audio, segmented inputs)
and the keys and values of ``_summary.json``."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import TranscribeConfig, run_transcribe
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.oracle import reference_outputs

# design.md "Output": these names with these types (written here, not taken from our schema module).
CONTRACT = {
    "id": pa.string(), "source": pa.string(), "duration_s": pa.float64(), "text": pa.string(),
    "draft_text": pa.string(), "token_ids": pa.list_(pa.int32()), "confidence": pa.float32(),
    "reference": pa.string(), "wer_errors": pa.int32(), "wer_words": pa.int32(),
    "error": pa.string(), "model": pa.string(),
}
SEGMENTS = pa.list_(pa.struct([("start_s", pa.float64()), ("end_s", pa.float64())]))
SUMMARY_KEYS = {"rows", "errors", "audio_seconds", "wall_seconds", "rtfx", "rows_inferred", "model",
                "settings"}


def check_file_schema(schema: pa.Schema, with_audio: bool) -> None:
    for name, type_ in CONTRACT.items():
        assert schema.field(name).type == type_, (name, schema.field(name).type)
    assert list(schema.names[:len(CONTRACT)]) == list(CONTRACT)
    assert schema.field("segments").type == SEGMENTS
    assert ("audio" in schema.names) == with_audio
    if with_audio:
        assert schema.field("audio").type == pa.binary()


def check_rows(rows: list[dict], model: str) -> None:
    expected = reference_outputs()
    assert sorted(r["id"] for r in rows) == sorted(expected)
    for row in rows:
        assert row["error"] is None and row["model"] == model
        duration = expected[row["id"]]["num_samples"] / 16000
        assert abs(row["duration_s"] - duration) < 1e-9
        # Segments tile the input from 0 to its end, in order.
        bounds = [(s["start_s"], s["end_s"]) for s in row["segments"]]
        assert bounds[0][0] == 0.0 and abs(bounds[-1][1] - duration) < 1e-9
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def check_summary(summary: dict, rows: list[dict]) -> None:
    assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
    assert (summary["rows"], summary["errors"], summary["rows_inferred"]) == (len(rows), 0, len(rows))
    assert abs(summary["audio_seconds"] - round(sum(r["duration_s"] for r in rows), 3)) < 1e-6
    assert summary["rtfx"] > 0 and summary["wall_seconds"] > 0


def test_local_output_with_audio_and_segments(ray_session, tmp_path):
    out = tmp_path / "out"
    # 3 s segments: a04 (3.2 s), a05 (4.9 s) and a06_long (7 s) are cut and joined back.
    run_transcribe(TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(out), model=str(TINY_MODEL),
                                    device="cpu", with_audio=True, max_segment_seconds=3.0),
                   echo=lambda *a: None)
    files = sorted(out.rglob("*.parquet"))
    assert files
    rows = []
    for f in files:
        check_file_schema(pq.read_schema(f), with_audio=True)
        rows += pq.read_table(f).to_pylist()
    check_rows(rows, str(TINY_MODEL))
    by_id = {r["id"]: r for r in rows}
    assert [len(by_id[u]["segments"]) > 1 for u in sorted(by_id)] == [False, False, False, True, True, True]
    assert all(s["end_s"] - s["start_s"] <= 3.0 for r in rows for s in r["segments"])
    for uid, row in by_id.items():   # the compressed bytes, exactly as stored
        assert row["audio"] == (TINY_AUDIO / f"{uid}.flac").read_bytes()
    check_summary(json.loads((out / "_summary.json").read_text()), rows)


def test_s3_output_without_audio(ray_session, s3_server, tmp_path):
    bucket = s3_server.make_bucket("contract")
    output = f"s3://{bucket}/run1"
    run_transcribe(TranscribeConfig(inputs=(str(TINY_AUDIO),), output=output, model=str(TINY_MODEL),
                                    device="cpu", s3_endpoint=s3_server.endpoint),
                   echo=lambda *a: None)
    fs = s3_server.fs(fresh=True)
    files = sorted(p for p in fs.find(f"{bucket}/run1") if p.endswith(".parquet"))
    assert files
    rows = []
    for path in files:
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
        check_file_schema(table.schema, with_audio=False)
        rows += table.to_pylist()
    check_rows(rows, str(TINY_MODEL))
    check_summary(json.loads(fs.cat_file(f"{bucket}/run1/_summary.json")), rows)
