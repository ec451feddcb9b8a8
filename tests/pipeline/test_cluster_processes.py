"""The job as a separate process against real Ray processes: a head started in another folder
(relative --model/--input/--output still work), the same head killed (the recorded address is
stale: one line, then a local instance), Ctrl-C mid-run (exit, then --resume completes) and the
console of a successful run. Heads get their own temp dir and ports and are ended by pid."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, TINY_AUDIO, free_port, stop_process
from tests.oracle import assert_rows_match_reference
from tests.pipeline.conftest import read_output, read_summary
from tests.pipeline.test_cluster import agent_ports, cluster_env

JOB = [sys.executable, "-m", "jobs.transcribe"]
# Ray Data's progress display without a terminal: one line per stage, e.g. "Write: 5/5".
PROGRESS = re.compile(r"logging_progress\.py:\d+ -- \S.*: \d+/(\d+|\?)$")
NOISE = ("Token authentication is enabled", "has constructor arguments in the object store",
         "Active & requested resources", "Started a local Ray instance", "Execution plan")


@pytest.fixture
def ray_tmp():
    """A short private RAY_TMPDIR: Ray's recorded-cluster file and sockets live under it."""
    path = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_head(ray_tmp: str, cwd: str, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """``ray start --head --block`` in ``cwd``, in its own process group (so that killing that
    group is a head crash); recorded in ``ray_tmp``/ray/ray_current_cluster. Retried: on a loaded
    machine Ray's fixed 30 s node start-up wait can run out."""
    for attempt in range(attempts):
        port = free_port()
        log_path = os.path.join(ray_tmp, f"head-{attempt}.log")
        with open(log_path, "wb") as log:
            head = subprocess.Popen(
                [shutil.which("ray"), "start", "--head", "--block", f"--port={port}",
                 "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
                 f"--dashboard-port={free_port()}", f"--temp-dir={ray_tmp}/ray",
                 f"--ray-client-server-port={free_port()}", "--object-store-memory=200000000",
                 *agent_ports()],
                cwd=cwd, env=cluster_env(RAY_TMPDIR=ray_tmp,
                                         RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0"),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and head.poll() is None and not started(log_path):
            time.sleep(1)
        if head.poll() is None and started(log_path):
            return head, address
        kill_head(head)
    pytest.fail(f"head did not start: {open(log_path).read()[-2000:]}")


def started(log_path: str) -> bool:
    """``ray start`` says so once the head's processes are up and registered."""
    with open(log_path, errors="replace") as f:
        return "Ray runtime started" in f.read()


def kill_head(head: subprocess.Popen) -> None:
    """A crash of the head: SIGKILL to the process group of the ``ray start`` we started."""
    if head.poll() is None:
        os.killpg(head.pid, signal.SIGKILL)
    head.wait(30)


def test_head_elsewhere_then_the_same_head_killed(ray_tmp, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    head, address = start_head(ray_tmp, str(elsewhere))
    relative_out = f"tmp-cluster-test-{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(
            [*JOB, "--input", "tests/fixtures/granite-nar-tiny/audio", "--output", relative_out,
             "--model", "tests/fixtures/granite-nar-tiny"],
            cwd=REPO, env=cluster_env(RAY_ADDRESS=address, RAY_TMPDIR=ray_tmp),
            capture_output=True, text=True, timeout=400)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.splitlines()[-1] == f"results: {REPO / relative_out}"
        rows = read_output(REPO / relative_out)
        assert_rows_match_reference(rows)
        assert {r["model"] for r in rows} == {"tests/fixtures/granite-nar-tiny"}
        assert read_summary(REPO / relative_out)["model"] == "tests/fixtures/granite-nar-tiny"
    finally:
        kill_head(head)
        shutil.rmtree(REPO / relative_out, ignore_errors=True)

    recorded = os.path.join(ray_tmp, "ray", "ray_current_cluster")
    stale = open(recorded).read().strip()                     # the record stays behind
    assert stale.rpartition(":")[2] == address.rpartition(":")[2]   # (recorded by node IP)
    out = tmp_path / "after-crash"
    started = time.monotonic()
    job = subprocess.Popen([*JOB, "--input", str(TINY_AUDIO / "a02.flac"), "--output", str(out),
                            "--model", "tests/fixtures/granite-nar-tiny"],
                           cwd=REPO, env=cluster_env(RAY_TMPDIR=ray_tmp), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in job.stdout:
        seen.append(line)
        if line.startswith("note:"):
            break
    noticed = time.monotonic() - started
    stdout, stderr = job.communicate(timeout=300)
    stdout = "".join(seen) + stdout
    assert job.returncode == 0, stderr[-3000:]
    # Ray is reached before indexing (the index is read by Ray tasks): the note is the first line.
    assert seen == [f"note: the Ray cluster recorded in {recorded} ({stale}) does not answer; "
                    "starting a local Ray instance instead\n"]
    assert stdout.splitlines()[1] == ("indexed 1 utterance (audio) from 1 input(s); 1 to "
                                      "transcribe, 0 already in the output")
    assert noticed < 60, noticed
    assert stdout.splitlines()[-1] == f"results: {out}"
    assert [r["id"] for r in read_output(out)] == ["a02"]


def test_ctrl_c_stops_the_job_and_resume_completes_it_quietly(
        ray_tmp, tmp_path, ctrl_c_reaches_children):
    corpus = tmp_path / "five"
    corpus.mkdir()
    for clip in sorted(TINY_AUDIO.glob("*.flac"))[:5]:
        shutil.copy(clip, corpus / clip.name)
    env = cluster_env(RAY_ADDRESS="local", RAY_TMPDIR=ray_tmp)
    job = subprocess.Popen([*JOB, "--input", str(corpus), "--output", "out",
                            "--model", str(REPO / "tests/fixtures/granite-nar-tiny")],
                           cwd=tmp_path, env={**env, "NLE_FAULT_SLOW_BATCH_S": "120"},
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in job.stdout:
            if line.startswith("inference:"):
                break
        time.sleep(5)
        job.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = job.communicate(timeout=60)
    finally:
        stop_process(job)
    assert time.monotonic() - interrupted < 60
    assert job.returncode == 130, stderr[-3000:]
    assert stderr.splitlines()[-1] == ("error: interrupted; what was written is kept: run the "
                                       "same command with --resume to complete it")
    assert "Traceback" not in stderr
    assert not (tmp_path / "out").exists()   # created by the run, nothing written: removed

    done = subprocess.run([*JOB, "--input", str(corpus), "--output", "out", "--resume",
                           "--model", str(REPO / "tests/fixtures/granite-nar-tiny")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = [i for f in sorted((tmp_path / "out").glob("*.parquet"))
           for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
    assert sorted(ids) == sorted(p.stem for p in corpus.glob("*.flac"))
    assert_rows_match_reference(read_output(tmp_path / "out"), ids=sorted(ids))
    # The console of a successful 5-file run: the progress display, the summary, little else.
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    others = [line for line in lines if not PROGRESS.search(line)]
    assert len(others) <= 15, "\n".join(others)
    assert not [line for line in lines if any(n in line for n in NOISE)]
    assert done.stdout.splitlines()[-1] == f"results: {tmp_path / 'out'}"
