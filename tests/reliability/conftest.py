"""Helpers for the fault-injection tests: corpora of copies, the CLI in a subprocess, a private
SeaweedFS that a test may stop and start, processes ended by their pid only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL, WeedServer

# Recognisable fake credentials: the secrets test searches every output for them.
FAKE_KEY, FAKE_SECRET = "AKIDNLEFAKE7Q2W9", "SECRETxyz123nle456FAKE"
JOB = [sys.executable, "-m", "jobs.transcribe"]


def copy_corpus(folder, copies: int) -> dict[str, str]:
    """``copies`` × the tiny checkpoint's clips under ``folder``; id → the clip's own id."""
    folder.mkdir(parents=True, exist_ok=True)
    origin = {}
    clips = sorted(TINY_AUDIO.glob("*.flac"))
    for n in range(copies):
        for clip in clips:
            uid = f"c{n:03d}_{clip.stem}"
            shutil.copy(clip, folder / f"{uid}.flac")
            origin[uid] = clip.stem
    return origin


def visible_files(output) -> list:
    """Data files a Parquet reader would pick up (no ``_``/``.`` names)."""
    return sorted(p for p in output.rglob("*.parquet") if not p.name.startswith(("_", ".")))


def id_counts(output) -> Counter:
    return Counter(i for f in visible_files(output) for i in pq.read_table(f, columns=["id"])
                   .column("id").to_pylist())


def rows_by_id(output) -> dict[str, dict]:
    rows = [r for f in visible_files(output) for r in pq.read_table(f).to_pylist()]
    return {r["id"]: r for r in rows}


def worker_log_lines(needle: str) -> list[str]:
    """Lines holding ``needle`` in this test session's Ray worker logs."""
    import pathlib

    import ray

    logs = pathlib.Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    return [line for f in sorted(logs.glob("worker-*")) if f.suffix in (".out", ".err")
            for line in f.read_text(errors="replace").splitlines() if needle in line]


def retry_log_lines() -> list[str]:
    """Lines our bounded retries (pipeline/retry.py) logged in this session's Ray workers."""
    from pipeline.retry import RETRY_LOG_PREFIX

    return worker_log_lines(RETRY_LOG_PREFIX)


def ray_write_retry_lines() -> list[str]:
    """Retries of Ray's Parquet writer in this session's workers (``log_ray_io_retries``): each
    write task creates the output folder, then writes its file, each step retried, e.g.
    ``ray._common.retry Retrying 1 attempts to create directory bkt/out after 1.1 seconds.`` or
    ``... attempts to write '<file>' to 'bkt/out' ...``."""
    from tests.conftest import RAY_RETRY_LOGGER

    return [line for line in worker_log_lines(f"{RAY_RETRY_LOGGER} Retrying")
            if "attempts to write '" in line or "attempts to create directory " in line]


def job_env(**extra: str) -> dict[str, str]:
    """The environment of a job subprocess: its own Ray (no address), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra)
    return env


def run_cli(args: list[str], timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*JOB, *args], cwd=REPO, env=job_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Non-zero exit, no traceback, one ``error:`` line on stderr containing every needle."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def ray_tmpdir():
    """A short private Ray temp dir for a job subprocess (its logs can be searched; the socket
    paths stay short)."""
    path = tempfile.mkdtemp(prefix="nr", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def private_s3(tmp_path_factory):
    """A SeaweedFS of the reliability tests' own, with the fake credentials; a test may stop it
    and must start it again."""
    weed = WeedServer(tmp_path_factory.mktemp("weed-private"), FAKE_KEY, FAKE_SECRET)
    weed.start()
    yield weed
    weed.stop()


@pytest.fixture
def fake_credentials(monkeypatch, private_s3):
    """The driver's AWS environment pointing at the private server (restored afterwards)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    return private_s3


MODEL = str(TINY_MODEL)


@pytest.fixture(autouse=True)
def _one_ray_session(ray_session):
    """Every test here shares the session's one local Ray (tests/conftest.py): a job that calls
    ``ray.init()`` itself then finds it, so the session's settings hold for the whole run whatever
    the order of the tests."""
