"""A Ray instance the job starts itself keeps its idle workers (``pipeline.cluster.worker_pool_config``):
after a burst of more light tasks than CPUs and a pause longer than Ray's idle-worker timeout
(1 s), every worker process of the burst is still there. Ray's default keeps one idle worker per
CPU and kills the rest, to start them again for the next tasks (each start imports Python,
pyarrow and Ray Data: about 2 CPU s on this VM). Each case runs in a fresh process with its own local Ray (``RAY_TMPDIR``), never the session's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline.cluster import RAY_DATA_HELPER_WORKERS, starts_local_instance, worker_pool_config

REPO = Path(__file__).resolve().parents[2]

BURSTS = """
import json, os, sys, time
import psutil, ray
if sys.argv[1] == "job":
    from pipeline.cluster import ensure_ray
    ensure_ray(verbose=False, say=lambda *a: None)
else:
    ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)
cpus = int(ray.cluster_resources()["CPU"])

@ray.remote(num_cpus=0)
def pid(hold):
    time.sleep(hold)
    return os.getpid()

t0 = time.monotonic()
first = set(ray.get([pid.remote(3.0) for _ in range(cpus + 2)]))
t1 = time.monotonic()
time.sleep(3.0)   # Ray kills an idle worker above its soft limit after 1 s
alive = [p for p in first if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
print(json.dumps({"cpus": cpus, "first": sorted(first), "alive": sorted(alive), "burst_s": t1 - t0}))
ray.shutdown()
"""


def bursts(tmp_path: Path, how: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    # a short temp dir: Ray's socket paths under it must fit AF_UNIX's 107 bytes
    with tempfile.TemporaryDirectory(prefix="nle-wp-", dir="/tmp") as temp:
        env.update(RAY_ADDRESS="local", RAY_TMPDIR=temp,
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
        done = subprocess.run([sys.executable, "-c", BURSTS, how], env=env, capture_output=True,
                              text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_jobs_own_instance_keeps_its_idle_workers_and_rays_default_does_not(tmp_path):
    job = bursts(tmp_path, "job")
    assert len(job["first"]) > job["cpus"]                  # more workers than Ray's default keeps
    assert job["alive"] == job["first"]                     # all kept through the pause
    default = bursts(tmp_path, "default")
    assert len(default["first"]) > default["cpus"]
    assert len(default["alive"]) <= default["cpus"]         # Ray's default: one idle worker per CPU


def test_the_limit_covers_the_jobs_busiest_moment():
    # decoders and actors (one per CPU), light tasks (one per CPU), Ray Data's helper actors
    assert worker_pool_config(2) == {"num_workers_soft_limit": 8}
    assert worker_pool_config(16) == {"num_workers_soft_limit": 32 + RAY_DATA_HELPER_WORKERS}
    assert worker_pool_config() == {"num_workers_soft_limit": 2 * os.cpu_count() + RAY_DATA_HELPER_WORKERS}


@pytest.mark.parametrize("address, recorded, own", [
    ("local", "127.0.0.1:6379", True), (None, None, True), (None, "127.0.0.1:6379", False),
    ("auto", None, False), ("10.0.0.5:6379", None, False), ("ray://10.0.0.5:10001", None, False)])
def test_only_an_instance_the_job_starts_gets_the_config(tmp_path, monkeypatch, address, recorded, own):
    # joining a running cluster with a _system_config is an error in Ray: only our own instance gets it
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    if recorded:
        (tmp_path / "ray" / "ray_current_cluster").write_text(recorded)
    assert starts_local_instance(address) is own


@pytest.mark.parametrize("user_limit", [None, "3"])
def test_ensure_ray_leaves_a_limit_the_user_set_to_them(monkeypatch, user_limit):
    # what ensure_ray hands ray.init (replaced: Ray itself is the subprocess test's business)
    import ray

    from pipeline import cluster

    got = {}
    monkeypatch.setattr(ray, "init", lambda **kwargs: got.update(kwargs))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster, "quiet_ray_logs", lambda verbose: None)
    monkeypatch.setattr(cluster, "stop_on_sigterm", lambda: None)
    monkeypatch.setenv("RAY_ADDRESS", "local")
    if user_limit is None:
        monkeypatch.delenv(cluster.SOFT_LIMIT_ENV, raising=False)
    else:
        monkeypatch.setenv(cluster.SOFT_LIMIT_ENV, user_limit)
    cluster.ensure_ray(verbose=False)
    assert got["address"] == "local"
    if user_limit is None:
        assert got["_system_config"] == worker_pool_config()
    else:
        assert "_system_config" not in got
