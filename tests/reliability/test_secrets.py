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
        assert failed.stderr.startswith("error: "), failed.stderr
    assert "not writable" in no_bucket.stderr
    assert "cannot be listed" in wrong_secret.stderr

    leaks = leaks_in_files(local) + leaks_in_files(pathlib.Path(ray_tmpdir))
    for result in (ok, no_bucket, wrong_secret):
        leaks += leaks_in_text(result.stdout + result.stderr)
    assert FAKE_SECRET[::-1] not in wrong_secret.stdout + wrong_secret.stderr
    assert leaks == []
    assert any(pathlib.Path(ray_tmpdir).rglob("*.log")) or any(pathlib.Path(ray_tmpdir).rglob("*.out"))
