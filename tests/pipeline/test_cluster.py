"""A real two-node Ray cluster on this machine: a head (CPUs only) and a node advertising one
(fake) GPU. The job runs as a separate driver, as users run it: ``python -m jobs.transcribe`` with
``RAY_ADDRESS`` set, and through ``ray job submit``. Both ``ray start`` processes are ours and are
ended by pid (never ``ray stop``, which would end every Ray process on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL, free_port, stop_process
from tests.oracle import assert_rows_match_reference
from tests.pipeline.conftest import MANIFEST, read_output, read_summary

NODES_SCRIPT = """
import json, ray
ray.init(address="{address}", log_to_driver=False)
print(json.dumps([[n["NodeID"], n["Resources"].get("GPU", 0)] for n in ray.nodes() if n["Alive"]]))
"""


def cluster_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", PYTHONPATH=str(REPO), **extra)
    return env


def alive_nodes(address: str) -> list[tuple[str, float]]:
    proc = subprocess.run([sys.executable, "-c", NODES_SCRIPT.format(address=address)],
                          env=cluster_env(), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return []
    return [tuple(n) for n in json.loads(proc.stdout.strip().splitlines()[-1])]


def agent_ports() -> list[str]:
    """Explicit free ports for a node's agents: the defaults clash with any other Ray on the
    machine (such as the test session's own local instance)."""
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]


def ray_start(args: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        # No graceful drain on SIGTERM: nothing here needs it and it would add 30 s per node.
        env = cluster_env(RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0")
        return subprocess.Popen([shutil.which("ray"), "start", "--block", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


@pytest.fixture(scope="module")
def cluster():
    """One cluster for every test of this module (the only one using it: started once per session
    and ended before the later tests run). (GCS address, dashboard URL, GPU node id) of a head + fake-GPU-node cluster."""
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")   # short: Unix socket paths are limited
    port, dash = free_port(), free_port()
    head = ray_start(["--head", f"--port={port}", "--num-cpus=3", "--num-gpus=0",
                      "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                      f"--dashboard-port={dash}", f"--temp-dir={temp}",
                      f"--ray-client-server-port={free_port()}",
                      "--object-store-memory=200000000", *agent_ports()], f"{temp}/head.log")
    address = f"127.0.0.1:{port}"
    worker = None
    try:
        worker = ray_start([f"--address={address}", "--num-cpus=2", "--num-gpus=1",
                            "--object-store-memory=200000000", *agent_ports()],
                           f"{temp}/worker.log")
        deadline, nodes = time.monotonic() + 120, []
        while time.monotonic() < deadline and len(nodes) < 2:
            time.sleep(2)
            nodes = alive_nodes(address)
        if len(nodes) < 2:
            pytest.fail(f"cluster did not come up: {nodes}; logs in {temp}")
        [gpu_node] = [node for node, gpus in nodes if gpus >= 1]
        yield address, f"http://127.0.0.1:{dash}", gpu_node
    finally:
        for proc in (worker, head):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (worker, head):
            if proc is not None:
                stop_process(proc, grace_s=60.0)
        shutil.rmtree(temp, ignore_errors=True)


def test_inference_only_on_the_gpu_node(cluster, tmp_path):
    """Only the inference stage asks for a GPU: every row is inferred on the GPU node (decoding
    may run on any node, design.md), and the results are the reference's."""
    address, _, gpu_node = cluster
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.transcribe", "--input", str(TINY_AUDIO), "--output", str(out),
         "--model", str(TINY_MODEL), "--output-is-shared"],   # one machine: its disk is shared
        cwd=REPO, env=cluster_env(RAY_ADDRESS=address), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 GPU and 1 CPU each" in proc.stdout
    rows = read_output(out)
    assert len(rows) == 6
    assert {r["infer_node"] for r in rows} == {gpu_node}
    assert all(r["decode_node"] for r in rows)
    assert_rows_match_reference(rows)


def submit(dashboard: str, entrypoint: list[str], attempts: int = 10,
           options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``ray job submit``, retried while the head's job agent is still starting."""
    for _ in range(attempts):
        proc = subprocess.run(
            [shutil.which("ray"), "job", "submit", "--address", dashboard, "--working-dir", ".",
             *options, "--", *entrypoint], cwd=REPO, env=cluster_env(), capture_output=True,
            text=True, timeout=400)
        if "No available agent to submit job" not in proc.stderr:
            return proc
        time.sleep(3)
    return proc


def test_ray_job_submit(cluster, tmp_path, references):
    _, dashboard, _ = cluster
    out = tmp_path / "submitted"
    proc = submit(dashboard, ["python", "-m", "jobs.transcribe",
                              "--input", str(MANIFEST.relative_to(REPO)), "--output", str(out),
                              "--model", str(TINY_MODEL.relative_to(REPO)),
                              "--output-is-shared"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "transcription summary" in proc.stdout
    rows = read_output(out)
    assert_rows_match_reference(rows)
    assert all(r["reference"] == references[r["id"]] for r in rows)
    assert read_summary(out)["model"] == "tests/fixtures/granite-nar-tiny"


def test_local_output_on_two_nodes_is_refused(cluster, tmp_path):
    address, _, _ = cluster
    out = tmp_path / "local-out"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.transcribe", "--input", str(TINY_AUDIO), "--output", str(out),
         "--model", str(TINY_MODEL)],
        cwd=REPO, env=cluster_env(RAY_ADDRESS=address), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert errors == [f"error: --output {out} is a local path, but the Ray cluster has 2 nodes and "
                      "each would write its share to its own disk; use s3://… or a shared mount, "
                      "and pass --output-is-shared when it is one"]
    assert not out.exists()     # the folder the check created is gone again


def ray_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("ray"), *args], cwd=REPO, env=cluster_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_readme_follow_logs_and_stop_a_job(cluster, tmp_path):
    """README: submit without waiting, ``ray job logs -f``, ``ray job stop``, ``ray job status``."""
    _, dashboard, _ = cluster
    job_id = f"nle-stop-{os.getpid()}"
    slow = json.dumps({"env_vars": {"NLE_FAULT_SLOW_BATCH_S": "300"}})
    proc = submit(dashboard, ["python", "-m", "jobs.transcribe", "--input", str(TINY_AUDIO),
                              "--output", str(tmp_path / "stopped"), "--output-is-shared",
                              "--model", str(TINY_MODEL.relative_to(REPO))],
                  options=("--no-wait", "--submission-id", job_id, "--runtime-env-json", slow))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    deadline, logs = time.monotonic() + 240, ""
    while time.monotonic() < deadline and "inference:" not in logs:
        time.sleep(3)
        logs = ray_cli("job", "logs", "--address", dashboard, job_id).stdout
    assert "inference: 1-1 actor, 1 GPU and 1 CPU each" in logs, logs[-3000:]
    stop = ray_cli("job", "stop", "--address", dashboard, job_id, timeout=180)
    assert stop.returncode == 0, (stop.stdout + stop.stderr)[-3000:]
    status = ray_cli("job", "status", "--address", dashboard, job_id)
    assert f"Job '{job_id}' was stopped" in status.stdout, status.stdout + status.stderr
    followed = ray_cli("job", "logs", "-f", "--address", dashboard, job_id, timeout=60)
    assert followed.returncode == 0 and "inference:" in followed.stdout
    # `ray job stop` sends SIGTERM: the job stops as on Ctrl-C and says how to resume.
    assert "error: interrupted; what was written is kept: run the same command with --resume " \
           "to complete it" in followed.stdout, followed.stdout[-3000:]


def test_runtime_env_lists_the_projects_dependencies():
    """``runtime_env.yaml`` (README's cluster section): pyproject's dependencies, less Ray."""
    import tomllib

    import yaml

    env = yaml.safe_load((REPO / "runtime_env.yaml").read_text())
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert env["pip"] == [d for d in deps if not d.startswith("ray")]
    assert [d for d in deps if d.startswith("ray")] == ["ray[default,data]>=2.40"]
