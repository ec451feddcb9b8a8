"""The scale run's harness (bench/scale.py) on small sizes: corpora written as stated, one job
measured from outside and stopped once its first Parquet file exists."""

from __future__ import annotations

import json
import tarfile

import psutil
import pyarrow.parquet as pq

from bench.scale import measure_job, write_manifest, write_parquet_corpus, write_webdataset
from tests.conftest import TINY_AUDIO, TINY_MODEL


def test_manifest_has_distinct_ids_over_a_few_clips(tmp_path):
    clips = [TINY_AUDIO / "a02.flac", TINY_AUDIO / "a04.flac"]
    size = write_manifest(tmp_path / "m.jsonl", 250_001, clips)
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert size == (tmp_path / "m.jsonl").stat().st_size and len(lines) == 250_001
    rows = [json.loads(lines[i]) for i in (0, 1, 250_000)]
    assert rows == [{"id": "u00000000", "audio_filepath": str(clips[0])},
                    {"id": "u00000001", "audio_filepath": str(clips[1])},
                    {"id": "u00250000", "audio_filepath": str(clips[0])}]
    assert len({json.loads(line)["id"] for line in lines}) == 250_001


def test_shard_corpora_reach_the_asked_size(tmp_path):
    tar_bytes = write_webdataset(tmp_path / "wds", 2.0, shard_mb=1.0)
    shards = sorted((tmp_path / "wds").glob("*.tar"))
    members = [m.name for s in shards for m in tarfile.open(s).getmembers()]
    # 10 s of 16-bit 16 kHz WAV is 320,044 bytes: 6 members for 2 MB, 3 per 1 MB shard
    assert len(shards) == 2 and len(members) == 12 and members[:2] == ["k0000000.wav", "k0000000.txt"]
    assert 1.9e6 < tar_bytes < 2.1e6
    pq_bytes = write_parquet_corpus(tmp_path / "pq", 2.0, shard_mb=1.0)
    tables = [pq.read_table(p) for p in sorted((tmp_path / "pq").glob("*.parquet"))]
    assert [t.num_rows for t in tables] == [3, 3] and tables[1].column("id").to_pylist() == ["p0000003", "p0000004", "p0000005"]
    assert 1.9e6 < pq_bytes < 2.1e6


def test_job_is_measured_until_its_first_output_then_stopped(tmp_path):
    clips = sorted(TINY_AUDIO.glob("a0[2-5]*.flac"))
    # 63 blocks of 256 rows: the job cannot be done by its first file (with 16, a fast job's last
    # blocks once finished in the moment between the first file and the stop)
    write_manifest(tmp_path / "m.jsonl", 16_000, clips)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    got = measure_job([str(tmp_path / "m.jsonl")], "manifest", tmp_path / "out", TINY_MODEL, timeout_s=300)
    assert 0 < got["first_output_seconds"] < 300
    assert 100 * 2**20 < got["driver_peak_rss_bytes"] < 4 * 2**30  # a Python driver with torch imported
    assert got["driver_read_chars"] > 0
    assert list((tmp_path / "out").rglob("*.parquet"))
    assert not (tmp_path / "out" / "_summary.json").exists()  # stopped before the end
    # what the measured job left: new processes, except those the session's own Ray started meanwhile
    # (a raylet starts and ends idle workers whenever it likes)
    left = {p.pid for p in psutil.Process().children(recursive=True)
            if p.pid not in before and not _descends_from(p, before)}
    assert left == set()


def _descends_from(proc: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(parent.pid in pids for parent in proc.parents())
    except psutil.Error:     # ended meanwhile
        return True
