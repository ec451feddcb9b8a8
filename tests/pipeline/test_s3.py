"""Every input format read from an S3 bucket, results written to another (real SeaweedFS)."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq

from pipeline import ConfigError, TranscribeConfig, run_transcribe
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_rows_match_reference
from tests.pipeline.corpus import audio_files, write_parquet_shard, write_tar_shard

import pytest


def upload_corpus(s3, bucket: str, tmp_path, references) -> dict[str, str]:
    """a01/a02 as plain files (a02 under sub/), a03 via a manifest, a04 in a Parquet shard,
    a05/a06 in a tar shard. Returns the input URI of each format."""
    fs = s3.fs()
    files = audio_files(TINY_AUDIO)
    fs.put_file(str(files["a01_short"]), f"{bucket}/audio/a01_short.flac")
    fs.put_file(str(files["a02"]), f"{bucket}/audio/sub/a02.flac")
    fs.put_file(str(files["a03_twoblocks"]), f"{bucket}/manifest/wav/a03.flac")
    fs.pipe_file(f"{bucket}/manifest/list.jsonl", json.dumps(
        {"audio_filepath": "wav/a03.flac", "id": "a03_twoblocks",
         "text": references["a03_twoblocks"]}).encode() + b"\n")
    write_parquet_shard(tmp_path / "p.parquet", {"a04": files["a04"]}, references, with_id=True)
    fs.put_file(str(tmp_path / "p.parquet"), f"{bucket}/parquet/train-0.parquet")
    write_tar_shard(tmp_path / "w.tar", {k: files[k] for k in ("a05", "a06_long")}, references)
    fs.put_file(str(tmp_path / "w.tar"), f"{bucket}/wds/shard-0.tar")
    return {"audio": f"s3://{bucket}/audio", "manifest": f"s3://{bucket}/manifest/list.jsonl",
            "parquet": f"s3://{bucket}/parquet/", "webdataset": f"s3://{bucket}/wds/shard-*.tar"}


def test_all_formats_from_s3_to_s3(ray_session, s3_server, tmp_path, references):
    bucket = s3_server.make_bucket("corpus")
    s3_server.make_bucket("results")
    inputs = upload_corpus(s3_server, bucket, tmp_path, references)
    output = "s3://results/run1"
    config = TranscribeConfig(inputs=tuple(inputs.values()), output=output, model=str(TINY_MODEL),
                              actors=(1, 1), s3_endpoint=s3_server.endpoint)
    summary = run_transcribe(config)

    fs = s3_server.fs()
    data_files = [p for p in fs.find("results/run1") if p.endswith(".parquet")]
    assert data_files and fs.exists("results/run1/_summary.json")
    rows = {r["id"]: r for f in data_files for r in pq.read_table(fs.open(f, "rb")).to_pylist()}
    # several inputs: the audio folder's derived ids start at their common folder, s3://corpus
    assert sorted(rows) == ["a03_twoblocks", "a04", "a05", "a06_long", "audio/a01_short",
                            "audio/sub/a02"]
    rows = {uid.removeprefix("audio/"): row for uid, row in rows.items()}
    assert rows["a01_short"]["source"] == "s3://corpus/audio/a01_short.flac"
    assert rows["a03_twoblocks"]["source"] == "s3://corpus/manifest/wav/a03.flac"
    assert rows["a04"]["source"] == "s3://corpus/parquet/train-0.parquet#0"
    assert rows["a05"]["source"] == "s3://corpus/wds/shard-0.tar#a05"
    assert_rows_match_reference(rows.values(), ids=[r["id"] for r in rows.values()],
                                origin=lambda uid: uid.split("/")[-1])
    assert rows["sub/a02"]["reference"] is None
    assert rows["a04"]["reference"] == references["a04"]
    assert rows["a05"]["reference"] == references["a05"]
    saved = json.loads(fs.cat_file("results/run1/_summary.json"))
    assert (saved["rows"], saved["errors"], saved["rows_inferred"]) == (6, 0, 6)
    assert saved == json.loads(json.dumps(summary))

    with pytest.raises(ConfigError, match="already holds results"):
        run_transcribe(config)
    hashes = {f: hashlib.sha256(fs.cat_file(f)).hexdigest() for f in data_files}
    resumed = run_transcribe(TranscribeConfig(**{**config.__dict__, "resume": True}))
    assert (resumed["rows"], resumed["rows_inferred"]) == (6, 0)
    fs = s3_server.fs(fresh=True)
    after = [p for p in fs.find("results/run1") if p.endswith(".parquet")]
    assert {f: hashlib.sha256(fs.cat_file(f)).hexdigest() for f in after} == hashes   # untouched
