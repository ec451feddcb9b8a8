"""The S3 server (a private SeaweedFS) is stopped during a run and started again: reads and writes
ride it out with a bounded backoff; an outage longer than the budget stops the job with a clear
message, and ``--resume`` then finishes it with every id exactly once."""

from __future__ import annotations

import threading
import time

import pytest

from jobs._common import message_of, user_error
from pipeline import TranscribeConfig, run_transcribe
from pipeline.retry import StorageUnavailable
from tests.reliability.conftest import MODEL, copy_corpus, id_counts, retry_log_lines, rows_by_id

COPIES = 2       # 12 rows


def upload(weed, folder, bucket: str) -> str:
    fs = weed.server.fs(fresh=True)
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    for f in sorted(folder.glob("*.flac")):
        fs.put_file(str(f), f"{bucket}/in/{f.name}")
    return f"s3://{bucket}/in"


class Outage:
    """An echo hook: when the job says it starts inference (index read, Ray about to run), wait
    ``after_s``, stop the server, keep it down ``down_s``, then start it again (if ``down_s``).
    With ``until_retried`` the server stays down until a worker has logged a retry (at most 120 s),
    so the retry path is certain to run whatever the timing of the machine."""

    def __init__(self, weed, after_s: float = 0.0, down_s: float | None = 3.0,
                 until_retried: bool = False):
        self.weed, self.after_s, self.down_s = weed, after_s, down_s
        self.until_retried = until_retried
        self.retries_before = len(retry_log_lines()) if until_retried else 0
        self.thread: threading.Thread | None = None
        self.stopped_at: float | None = None

    def __call__(self, message: str) -> None:
        print(message)
        if message.startswith("inference:") and self.thread is None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
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


def test_writes_ride_out_a_short_outage(ray_session, s3_env, tmp_path):
    origin = copy_corpus(tmp_path / "in", COPIES)
    fs = s3_env.server.fs(fresh=True)
    if not fs.exists("outage-writes"):
        fs.mkdir("outage-writes")
    outage = Outage(s3_env, after_s=1.0, down_s=8.0)   # down while the rows are computed
    try:
        summary = run_transcribe(config(str(tmp_path / "in"), "s3://outage-writes/out"),
                                 echo=outage)
    finally:
        outage.join()
    assert outage.stopped_at is not None
    fs = s3_env.server.fs(fresh=True)
    files = [p for p in fs.find("outage-writes/out") if p.endswith(".parquet")]
    import pyarrow.parquet as pq
    from collections import Counter

    ids = Counter(i for p in files for i in pq.read_table(fs.open(p, "rb")).column("id").to_pylist())
    assert_complete(ids, origin)
    assert fs.exists("outage-writes/out/_summary.json")
    assert (summary["rows"], summary["errors"]) == (len(origin), 0), summary["error_reasons"]


def test_outage_beyond_budget_fails_clearly_then_resume_finishes(ray_session, s3_env, tmp_path,
                                                                 monkeypatch):
    origin = copy_corpus(tmp_path / "in", COPIES)
    inputs = upload(s3_env, tmp_path / "in", "outage-long")
    out = str(tmp_path / "out")
    monkeypatch.setenv("NLE_IO_RETRY_SECONDS", "1")
    outage = Outage(s3_env, after_s=0.0, down_s=None)          # stays down
    with pytest.raises(Exception) as failure:
        run_transcribe(config(inputs, out), echo=outage)
    known = user_error(failure.value)
    assert isinstance(known, StorageUnavailable), failure.value
    message = message_of(known)
    assert "storage unreachable" in message and "--resume" in message and "\n" not in message
    assert "gave up after 1 s of retries" in message
    assert not (tmp_path / "out" / "_summary.json").exists()   # a failed run claims nothing
    s3_env.start()
    resumed = run_transcribe(config(inputs, out, resume=True))
    assert_complete(id_counts(tmp_path / "out"), origin)
    assert resumed["rows"] == len(origin) and resumed["errors"] == 0
