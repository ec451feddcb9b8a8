"""The driver-side cluster rules without starting Ray: which address is joined, local paths made
absolute, the multi-node output check, the empty output folder removed after a failure, and the
storage-error patterns given to Ray Data."""

from __future__ import annotations

import os
import re
import socket
import time
import warnings

import pytest

from pipeline.cluster import (
    RETRIED_WRITE_ERRORS, absolute_paths, check_output_shared, choose_address,
    removing_output_if_left_empty, results_line,
)
from pipeline.config import ConfigError, TranscribeConfig
from pipeline.storage import Storage


def closed_port() -> int:
    """A port nothing listens on (bound, then released), as a killed head leaves behind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_local_and_unset_follow_ray(tmp_path):
    assert choose_address({"RAY_ADDRESS": "local"}) == "local"
    assert choose_address({"RAY_ADDRESS": "http://127.0.0.1:8265"}) == "http://127.0.0.1:8265"


def test_ray_address_that_does_not_answer_is_one_line_within_seconds():
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        choose_address({"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert time.monotonic() - started < 10
    assert str(e.value) == (f"RAY_ADDRESS=127.0.0.1:{port} does not answer (no Ray cluster there "
                            "within 3 s); start the cluster, fix RAY_ADDRESS, or set "
                            "RAY_ADDRESS=local to run on this machine")


def test_stale_recorded_cluster_falls_back_to_a_local_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    port = closed_port()
    (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
    said = []
    assert choose_address({}, say=said.append) == "local"
    assert said == [f"note: the Ray cluster recorded in {tmp_path}/ray/ray_current_cluster "
                    f"(127.0.0.1:{port}) does not answer; starting a local Ray instance instead"]


def test_live_recorded_cluster_is_joined_as_ray_does(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}")
        said = []
        assert choose_address({}, say=said.append) is None   # ray.init() joins it itself
    assert said == []
    (tmp_path / "ray" / "ray_current_cluster").unlink()
    assert choose_address({}, say=said.append) is None and said == []


def test_local_paths_are_made_absolute_on_the_driver(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = TranscribeConfig(inputs=("corpus/a", "s3://bkt/in/", "file://rel/x"), output="out/r1",
                              audio_root="clips")
    done = absolute_paths(config, env={})
    assert done.inputs == (f"{tmp_path}/corpus/a", "s3://bkt/in/", f"{tmp_path}/rel/x")
    assert (done.output, done.audio_root) == (f"{tmp_path}/out/r1", f"{tmp_path}/clips")
    assert absolute_paths(TranscribeConfig(inputs=("x",), output="s3://b/o"), env={}).output == \
        "s3://b/o"
    assert results_line("out/r1") == f"results: {tmp_path}/out/r1"
    assert results_line("s3://b/o") == "results: s3://b/o"


def test_relative_output_under_ray_job_submit_is_refused(tmp_path):
    env = {"RAY_JOB_CONFIG_JSON_ENV_VAR":
           '{"runtime_env": {"working_dir": "gcs://_ray_pkg_abc.zip"}, "metadata": {}}'}
    config = TranscribeConfig(inputs=("examples",), output="outputs/cluster")
    with pytest.raises(ConfigError, match=r"^--output outputs/cluster is relative, and this job "
                                          r"runs in Ray's temporary copy of --working-dir "
                                          r"gcs://_ray_pkg_abc.zip"):
        absolute_paths(config, env=env)
    ok = absolute_paths(TranscribeConfig(inputs=("examples",), output="/shared/out"), env=env)
    assert ok.output == "/shared/out" and ok.inputs[0] == os.path.abspath("examples")


def test_local_output_on_a_multi_node_cluster_is_refused():
    with pytest.raises(ConfigError) as e:
        check_output_shared("/data/out", nodes=2, shared=False)
    assert str(e.value) == ("--output /data/out is a local path, but the Ray cluster has 2 nodes "
                            "and each would write its share to its own disk; use s3://… or a "
                            "shared mount, and pass --output-is-shared when it is one")
    check_output_shared("/data/out", nodes=2, shared=True)
    check_output_shared("s3://bkt/out", nodes=3, shared=False)
    check_output_shared("/data/out", nodes=1, shared=False)


def test_failed_run_removes_the_output_folders_it_created_and_left_empty(tmp_path):
    storage = Storage.from_env(None)
    output = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(RuntimeError):
        with removing_output_if_left_empty(storage, str(output)):
            output.mkdir(parents=True)
            (output / ".nle-write-probe-x").write_bytes(b"")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == []
    kept = tmp_path / "kept"
    with pytest.raises(KeyboardInterrupt):
        with removing_output_if_left_empty(storage, str(kept)):
            kept.mkdir()
            (kept / "part-0.parquet").write_bytes(b"PAR1")
            raise KeyboardInterrupt
    assert os.listdir(kept) == ["part-0.parquet"]
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(RuntimeError):
        with removing_output_if_left_empty(storage, str(existing)):
            raise RuntimeError("boom")
    assert existing.is_dir()     # not created by this run: left alone


def test_failed_run_removes_an_empty_s3_output_it_created(s3_server):
    bucket = s3_server.make_bucket("cluster-rules")
    storage = Storage.from_env(s3_server.endpoint)
    fs = s3_server.fs(fresh=True)
    with pytest.raises(RuntimeError):
        with removing_output_if_left_empty(storage, f"s3://{bucket}/run1"):
            fs.pipe_file(f"{bucket}/run1/sub/", b"")          # a 0-byte "folder" object
            raise RuntimeError("boom")
    fs.invalidate_cache()
    assert fs.find(f"{bucket}/run1") == []
    with pytest.raises(RuntimeError):
        with removing_output_if_left_empty(storage, f"s3://{bucket}/run2"):
            fs.pipe_file(f"{bucket}/run2/part-0.parquet", b"PAR1")
            raise RuntimeError("boom")
    fs.invalidate_cache()
    assert fs.find(f"{bucket}/run2") == [f"{bucket}/run2/part-0.parquet"]


def test_retried_write_errors_are_regexes_set_without_a_deprecation_warning(ray_session):
    from ray.data import DataContext

    from pipeline.cluster import configure_ray_data

    messages = {"AWS Error NETWORK_CONNECTION during PutObject": True,
                "Could not connect to endpoint": True, "HTTP status 502 Bad Gateway": True,
                "HTTP status 501": False, "AWS Error ACCESS_DENIED": False}
    DataContext.get_current()   # Ray's own construction warns (use_push_based_shuffle): not ours
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_ray_data()
        configure_ray_data()   # twice: nothing added twice
        DataContext.get_current().copy()
    assert [str(w.message) for w in caught] == []
    patterns = DataContext.get_current().retried_io_errors
    assert [p for p in patterns if p in RETRIED_WRITE_ERRORS] == \
        list(dict.fromkeys(p for p in patterns if p in RETRIED_WRITE_ERRORS))
    assert set(RETRIED_WRITE_ERRORS) <= set(patterns)
    for message, retried in messages.items():
        assert any(re.search(p, message) for p in RETRIED_WRITE_ERRORS) is retried, message
