"""The S3 server (a private SeaweedFS) is stopped during a run and started again: reads and writes
ride it out with a bounded backoff; an outage longer than the budget stops the job with a clear
message, and ``--resume`` then finishes it with every id exactly once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter

import pyarrow.parquet as pq
import pytest

from jobs._common import message_of, user_error
from pipeline import TranscribeConfig, run_transcribe
from pipeline.faults import FAULT_SLOW_BATCH_S
from pipeline.retry import StorageUnavailable
from tests.reliability.conftest import (
    MODEL, copy_corpus, id_counts, ray_write_retry_lines, retry_log_lines, rows_by_id,
    visible_files,
)

COPIES = 2       # 12 rows


def upload(weed, folder, bucket: str) -> str:
    fs = weed.server.fs(fresh=True)
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    for f in sorted(folder.glob("*.flac")):
        fs.put_file(str(f), f"{bucket}/in/{f.name}")
    return f"s3://{bucket}/in"


class _OnInference:
    """An echo hook that prints the job's lines and, when the job says it starts inference (index
    read, Ray about to run), runs ``_run`` on a thread once."""

    thread: threading.Thread | None = None

    def __call__(self, message: str) -> None:
        print(message)
        if message.startswith("inference:") and self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
            self._started()

    def _started(self) -> None:
        """Runs on the job's thread right after ``_run`` starts."""

    def _run(self) -> None:
        raise NotImplementedError


class Outage(_OnInference):
    """An echo hook: when the job says it starts inference (index read, Ray about to run), wait
    ``after_s``, stop the server, keep it down ``down_s``, then start it again (if ``down_s``).
    With ``until_retried`` the server stays down until a worker has logged a retry (at most 120 s),
    so the retry path is certain to run whatever the timing of the machine."""

    def __init__(self, weed, after_s: float = 0.0, down_s: float | None = 3.0,
                 until_retried: bool = False):
        self.weed, self.after_s, self.down_s = weed, after_s, down_s
        self.until_retried = until_retried
        self.retries_before = len(retry_log_lines()) if until_retried else 0
        self.stopped_at: float | None = None

    def _started(self) -> None:
        if self.after_s == 0:
            while self.stopped_at is None:   # down before Ray reads a byte
                time.sleep(0.01)

    def _run(self) -> None:
        time.sleep(self.after_s)
        self.weed.stop()
        self.stopped_at = time.monotonic()
        if self.down_s is not None:
            time.sleep(self.down_s)
            deadline = time.monotonic() + 120
            while self.until_retried and len(retry_log_lines()) <= self.retries_before \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            self.weed.start(wait_s=0)    # the job, not this thread, waits for it

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(120)
        if self.down_s is not None:
            self.weed.wait_ready()


def config(inputs: str, output: str, **kw) -> TranscribeConfig:
    return TranscribeConfig(inputs=(inputs,), output=output, model=MODEL, actors=(1, 1),
                            s3_endpoint=None, **kw)


@pytest.fixture
def s3_env(fake_credentials, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", fake_credentials.server.endpoint)
    return fake_credentials


def assert_complete(output_ids, origin) -> None:
    assert sorted(output_ids) == sorted(origin) and set(output_ids.values()) == {1}


def test_reads_ride_out_a_short_outage(ray_session, s3_env, tmp_path):
    origin = copy_corpus(tmp_path / "in", COPIES)
    inputs = upload(s3_env, tmp_path / "in", "outage-reads")
    before = len(retry_log_lines())
    outage = Outage(s3_env, after_s=0.0, down_s=1.0, until_retried=True)
    try:
        summary = run_transcribe(config(inputs, str(tmp_path / "out")), echo=outage)
    finally:
        outage.join()
    assert outage.stopped_at is not None
    # The retry path ran: the workers' reads failed while the server was down and were retried.
    new = retry_log_lines()[before:]
    assert new and all("while reading s3://outage-reads/in/" in line for line in new), new
    assert_complete(id_counts(tmp_path / "out"), origin)
    errors = {r["error"] for r in rows_by_id(tmp_path / "out").values()}
    assert errors == {None}                        # no row lost to the outage
    assert (summary["rows"], summary["errors"]) == (len(origin), 0)


class OutageAfterFirstFile(_OnInference):
    """An echo hook for a job writing to the server: once inference starts, a thread polls the
    output prefix; when the first data file is there it records the files' hashes and stops the
    server while the job still has files to write; it starts it again once Ray's Parquet writer
    has logged a retry (at most 120 s), so the write path is certain to have met the outage."""

    def __init__(self, weed, prefix: str):
        self.weed, self.prefix = weed, prefix
        self.retries_before = len(ray_write_retry_lines())
        self.first_files: dict[str, str] = {}
        self.stopped_at: float | None = None

    def _run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.first_files and time.monotonic() < deadline:
            self.first_files = s3_file_hashes(self.weed, self.prefix)
            time.sleep(0.1)
        self.weed.stop()
        self.stopped_at = time.monotonic()
        deadline = time.monotonic() + 120
        while len(ray_write_retry_lines()) <= self.retries_before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.weed.start(wait_s=0)

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(420)
        self.weed.wait_ready()


def s3_file_hashes(weed, prefix: str) -> dict[str, str]:
    """Data file → SHA-256 of its bytes under ``prefix`` ({} while the server is down)."""
    try:
        fs = weed.server.fs(fresh=True)
        return {p: hashlib.sha256(fs.cat_file(p)).hexdigest() for p in fs.find(prefix)
                if p.endswith(".parquet")}
    except Exception:  # noqa: BLE001 - not there yet, or the server is restarting
        return {}


def test_writes_ride_out_a_short_outage(ray_session, s3_env, tmp_path, monkeypatch):
    origin = copy_corpus(tmp_path / "in", 24)          # 144 rows: three output files of 64 rows
    monkeypatch.setenv(FAULT_SLOW_BATCH_S, "2")      # the files are written seconds apart
    fs = s3_env.server.fs(fresh=True)
    if not fs.exists("outage-writes"):
        fs.mkdir("outage-writes")
    outage = OutageAfterFirstFile(s3_env, "outage-writes/out")
    try:
        summary = run_transcribe(config(str(tmp_path / "in"), "s3://outage-writes/out"),
                                 echo=outage)
    finally:
        outage.join()
    assert outage.stopped_at is not None and outage.first_files
    # Ray's writer met the outage: a write to the output failed and was retried.
    new = ray_write_retry_lines()[outage.retries_before:]
    assert new and all("outage-writes/out" in line for line in new), new
    after = s3_file_hashes(s3_env, "outage-writes/out")
    assert {p: after[p] for p in outage.first_files} == outage.first_files   # kept as written
    assert len(after) > len(outage.first_files)       # the rest was written after the outage
    fs = s3_env.server.fs(fresh=True)
    ids = Counter(i for p in after for i in pq.read_table(fs.open(p, "rb")).column("id").to_pylist())
    assert_complete(ids, origin)
    assert fs.exists("outage-writes/out/_summary.json")
    assert (summary["rows"], summary["errors"]) == (len(origin), 0), summary["error_reasons"]


def local_file_stamps(output) -> dict:
    """Data file → (mtime ns, SHA-256 of its bytes) under a local output."""
    return {f: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in visible_files(output)}


def test_outage_beyond_budget_fails_clearly_then_resume_finishes(ray_session, s3_env, tmp_path,
                                                                 monkeypatch):
    """Results of an earlier run are in the output when the outage starts (the corpus grew since);
    the failed run and the resume that completes it leave them as they were."""
    origin = copy_corpus(tmp_path / "in", COPIES)
    fs = s3_env.server.fs(fresh=True)
    if not fs.exists("outage-long"):
        fs.mkdir("outage-long")
    first_half = sorted(uid for uid in origin if uid.startswith("c000_"))
    for uid in first_half:
        fs.put_file(str(tmp_path / "in" / f"{uid}.flac"), f"outage-long/in/{uid}.flac")
    inputs, out = "s3://outage-long/in", tmp_path / "out"
    first = run_transcribe(config(inputs, str(out)))
    assert (first["rows"], first["errors"]) == (len(first_half), 0)
    earlier = local_file_stamps(out)
    assert earlier and sorted(id_counts(out)) == first_half
    upload(s3_env, tmp_path / "in", "outage-long")               # the rest of the corpus arrives

    monkeypatch.setenv("NLE_IO_RETRY_SECONDS", "1")
    outage = Outage(s3_env, after_s=0.0, down_s=None)          # stays down
    with pytest.raises(Exception) as failure:
        run_transcribe(config(inputs, str(out), resume=True), echo=outage)
    known = user_error(failure.value)
    assert isinstance(known, StorageUnavailable), failure.value
    message = message_of(known)
    assert message.startswith("storage unreachable while reading s3://outage-long/in/c001_")
    assert "--resume" in message and "\n" not in message
    assert "gave up after 1 s of retries" in message
    assert not (out / "_summary.json").exists()   # a failed run claims nothing
    assert local_file_stamps(out) == earlier       # and left the earlier results alone
    s3_env.start()
    resumed = run_transcribe(config(inputs, str(out), resume=True))
    assert_complete(id_counts(out), origin)
    assert (resumed["rows"], resumed["errors"], resumed["rows_inferred"]) == \
        (len(origin), 0, len(origin) - len(first_half))
    assert {f: local_file_stamps(out)[f] for f in earlier} == earlier   # not recomputed
