"""The pseudo-label job writing its kept set to object storage (a real SeaweedFS S3 server)."""

import io
import json

import pyarrow.parquet as pq
import soundfile as sf

from jobs import pseudo_label
from pipeline.pseudo_label.kept_audio import kept_audio_relpath
from tests.model.conftest import TINY


def test_kept_set_on_s3(s3_server, ray_session, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    bucket = s3_server.make_bucket("pseudo")
    out = f"s3://{bucket}/run1"
    assert pseudo_label.main(["--input", str(TINY / "manifest.jsonl"), "--output", out,
                              "--model", str(TINY), "--device", "cpu",
                              "--min-label-seconds", "3.0"]) == 0
    fs = s3_server.fs(fresh=True)
    summary = json.loads(fs.cat_file(f"{bucket}/run1/_pseudo_label_summary.json"))
    # a04, a05 and a06_long are over 3 s and transcribe to non-empty text
    assert (summary["rows"], summary["kept"]) == (6, 3)
    assert {k: v["rows"] for k, v in summary["rejected_by"].items()} == {"empty_text": 1, "too_short": 2}
    lines = [json.loads(x) for p in fs.glob(f"{bucket}/run1/kept_manifest/*.json")
             for x in fs.cat_file(p).decode().splitlines()]
    assert sorted(m["id"] for m in lines) == ["a04", "a05", "a06_long"]
    for m in lines:
        assert m["audio_filepath"] == f"{out}/{kept_audio_relpath(m['id'])}"
        info = sf.info(io.BytesIO(fs.cat_file(m["audio_filepath"])))
        original = sf.info(TINY / "audio" / f"{m['id']}.flac")
        assert info.frames == original.frames and abs(info.duration - m["duration"]) < 1e-6
    hf = []
    for path in fs.glob(f"{bucket}/run1/kept/*.parquet"):
        with fs.open(path, "rb") as f:
            hf += pq.read_table(f).to_pylist()
    assert sorted(r["id"] for r in hf) == ["a04", "a05", "a06_long"]
    assert all(r["audio"]["bytes"][:4] == b"fLaC" for r in hf)
    assert fs.cat_file(f"{bucket}/run1/histograms.png")[:4] == b"\x89PNG"
