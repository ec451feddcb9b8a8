"""S3 credentials never appear in logs, error messages, ``_summary.json`` or Parquet: a job runs
with recognisable fake credentials (accepted by a private SeaweedFS) and every output byte, the
captured stdout/stderr and Ray's own log files are searched for them, failing runs included."""

from __future__ import annotations

import pathlib

from tests.conftest import TINY_AUDIO
from tests.reliability.conftest import FAKE_KEY, FAKE_SECRET, MODEL, run_cli

NEEDLES = (FAKE_SECRET.encode(), FAKE_KEY.encode())


def leaks_in_files(root: pathlib.Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found += [f"{path}: {n.decode()}" for n in NEEDLES if n in data]
    return found


def leaks_in_text(text: str) -> list[str]:
    return [n.decode() for n in NEEDLES if n.decode() in text]


def test_credentials_never_leak(fake_credentials, tmp_path, ray_tmpdir):
    weed = fake_credentials
    fs = weed.server.fs(fresh=True)
    for bucket in ("secret-in", "secret-out"):
        if not fs.exists(bucket):
            fs.mkdir(bucket)
    for clip in sorted(TINY_AUDIO.glob("*.flac"))[:3]:
        fs.put_file(str(clip), f"secret-in/audio/{clip.name}")
    fs.pipe_file("secret-in/audio/broken.flac", b"not audio at all")
    env = {"AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
           "AWS_ENDPOINT_URL": weed.server.endpoint, "RAY_TMPDIR": ray_tmpdir}
    base = ["--input", "s3://secret-in/audio", "--model", MODEL, "--actors", "1,1"]

    ok = run_cli([*base, "--output", "s3://secret-out/run"], **env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    local = tmp_path / "downloaded"
    fs.invalidate_cache()
    fs.get("secret-out/run", str(local), recursive=True)
    names = sorted(p.name for p in local.rglob("*") if p.is_file())
    assert "_summary.json" in names and any(n.endswith(".parquet") for n in names)
    assert "s3_endpoint" in (local / "_summary.json").read_text()      # settings are recorded

    no_bucket = run_cli([*base, "--output", "s3://x/run"], **env)       # an invalid bucket name
    wrong_secret = run_cli([*base, "--output", "s3://secret-out/run2"],
                           **{**env, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET[::-1]})
    for failed in (no_bucket, wrong_secret):
        assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
        # Besides Ray Data's progress lines (the index is read by Ray tasks), one error line.
        lines = [line for line in failed.stderr.splitlines()
                 if line.strip() and "logging_progress.py" not in line]
        assert len(lines) == 1 and lines[0].startswith("error: "), failed.stderr
    assert "not writable" in no_bucket.stderr
    assert "cannot be reached" in wrong_secret.stderr and "refused the credentials" in wrong_secret.stderr

    leaks = leaks_in_files(local) + leaks_in_files(pathlib.Path(ray_tmpdir))
    for result in (ok, no_bucket, wrong_secret):
        leaks += leaks_in_text(result.stdout + result.stderr)
    assert FAKE_SECRET[::-1] not in wrong_secret.stdout + wrong_secret.stderr
    assert leaks == []
    assert any(pathlib.Path(ray_tmpdir).rglob("*.log")) or any(pathlib.Path(ray_tmpdir).rglob("*.out"))


def test_credentials_never_leak_when_a_worker_fails(fake_credentials, ray_tmpdir):
    """The S3 server goes away once the job has listed its inputs: the read fails inside a Ray
    worker (retries spent), the job stops with one line, and neither that line nor Ray's logs hold
    the credentials."""
    import subprocess

    from tests.reliability.conftest import JOB, REPO, job_env

    weed = fake_credentials
    fs = weed.server.fs(fresh=True)
    if not fs.exists("secret-worker"):
        fs.mkdir("secret-worker")
    for clip in sorted(TINY_AUDIO.glob("*.flac"))[:2]:
        fs.put_file(str(clip), f"secret-worker/audio/{clip.name}")
    env = job_env(AWS_ACCESS_KEY_ID=FAKE_KEY, AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
                  AWS_ENDPOINT_URL=weed.server.endpoint, RAY_TMPDIR=ray_tmpdir,
                  NLE_IO_RETRY_SECONDS="1")
    job = subprocess.Popen([*JOB, "--input", "s3://secret-worker/audio", "--output",
                            f"{ray_tmpdir}/out", "--model", MODEL, "--actors", "1,1"],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        for line in job.stdout:              # the driver has listed the inputs: cut the server
            if line.startswith("inference:"):
                weed.stop()
                break
        out, err = job.communicate(timeout=240)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait(30)
        weed.start()
    assert job.returncode == 1, err[-3000:]
    # Our own message is the one `error:` line and the last one. (Ray Data still logs the worker's
    # traceback on the driver's stderr before it: the console is not one line here yet.)
    lines = [line for line in err.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], err[-3000:]
    assert lines[-1].startswith("error: storage unreachable while reading "
                               "s3://secret-worker/audio/a0"), lines[-1]
    assert lines[-1].endswith("then rerun with --resume to finish (rows already written are "
                             "kept)"), lines[-1]
    leaks = leaks_in_text(out + err) + leaks_in_files(pathlib.Path(ray_tmpdir))
    assert leaks == []
    # The failure happened in a worker, and its logs were among the files searched.
    worker_logs = [p for p in pathlib.Path(ray_tmpdir).rglob("worker-*.err")]
    assert any("storage retry" in p.read_text(errors="replace") for p in worker_logs)
