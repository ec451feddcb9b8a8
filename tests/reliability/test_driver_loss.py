"""The job's driver (``python -m jobs.transcribe``) is SIGKILLed half-way; ``--resume`` finishes
the job with no duplicate ids and without recomputing a row that was already written."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq

from tests.conftest import REPO
from tests.reliability.conftest import (
    JOB, MODEL, copy_corpus, id_counts, job_env, rows_by_id, run_cli, visible_files,
)

COPIES = 40          # 240 rows: several output files of at most 64 rows
SLOW_BATCH_S = "1.5"  # each actor batch this much slower, so that half-way lasts a while


def rows_written(output) -> int:
    total = 0
    for f in visible_files(output):
        total += pq.read_metadata(f).num_rows     # every visible file is complete (atomic writes)
    return total


def file_stamps(files) -> dict:
    """File → (mtime ns, SHA-256 of its bytes)."""
    return {f: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest()) for f in files}


def kill_when_written(proc: subprocess.Popen, output, low: int, timeout_s: float = 240) -> None:
    """SIGKILL the job's whole process group once at least ``low`` rows are on disk."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if output.exists() and rows_written(output) >= low:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be killed:\n" + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def processes_of(ray_tmpdir: str) -> list[int]:
    """Pids of the processes the job started: their environment names its private RAY_TMPDIR."""
    needle = f"RAY_TMPDIR={ray_tmpdir}".encode()
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def end_processes_of(ray_tmpdir: str, timeout_s: float = 30) -> None:
    """End what the killed driver left behind (Ray's workers may still be finishing a write),
    by pid, and wait until they are gone."""
    deadline = time.monotonic() + timeout_s
    while (pids := processes_of(ray_tmpdir)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    assert not processes_of(ray_tmpdir)


def test_driver_killed_half_way_resume_completes_without_recomputing(tmp_path, ray_tmpdir):
    origin = copy_corpus(tmp_path / "in", copies=COPIES)
    total = len(origin)
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "in"), "--output", str(out), "--model", MODEL,
            "--actors", "1,1"]
    env = job_env(RAY_TMPDIR=ray_tmpdir, NLE_FAULT_SLOW_BATCH_S=SLOW_BATCH_S)
    proc = subprocess.Popen([*JOB, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        kill_when_written(proc, out, low=total // 2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        end_processes_of(ray_tmpdir)
    present = rows_written(out)
    assert 0 < present < total, f"kill came at {present}/{total} rows"
    assert not (out / "_summary.json").exists()
    before = set(id_counts(out))
    files_before = file_stamps(visible_files(out))

    resumed = run_cli([*args, "--resume"], RAY_TMPDIR=ray_tmpdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    counts = id_counts(out)
    assert sorted(counts) == sorted(origin) and set(counts.values()) == {1}
    assert file_stamps(files_before) == files_before         # kept as they were, byte for byte
    assert not [p for p in out.rglob(".tmp-*")]                              # no leftovers
    import json

    summary = json.loads((out / "_summary.json").read_text())
    assert summary["rows"] == total
    assert summary["rows_inferred"] == total - present == total - len(before)
    rows = rows_by_id(out)
    assert all(rows[uid]["error"] is None for uid in origin)
