"""Ray failing to start (seen on an overloaded machine: "The current node timed out during startup")
is one error line with exit 1, not Ray's traceback. Ray's start itself cannot be made to fail on
purpose here, so ``ray.init`` is replaced by one that raises Ray's own message."""

import pytest

from jobs._common import run_job


def test_a_node_that_times_out_at_start_is_one_line(monkeypatch, capsys):
    import ray

    from pipeline import cluster

    def failing_init(**kwargs):
        raise Exception("The current node timed out during startup. This could happen because some of "
                        "the Ray processes failed to startup.\nTraceback ...")

    monkeypatch.setattr(ray, "init", failing_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster, "choose_address", lambda say: "local")
    monkeypatch.setattr(cluster, "quiet_ray_logs", lambda verbose: None)   # no handlers on pytest's streams
    assert run_job(lambda: cluster.ensure_ray(verbose=False), [], "jobs.transcribe") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: a local Ray instance did not start: The current node timed out during startup. "
                   "This could happen because some of the Ray processes failed to startup. (a busy or "
                   "short-of-memory machine can cause this; run the same command again, or pass "
                   "--verbose for Ray's own messages)"]


def test_other_failures_keep_their_traceback(monkeypatch):
    import ray

    from pipeline import cluster

    monkeypatch.setattr(ray, "init", lambda **kwargs: (_ for _ in ()).throw(KeyError("bug")))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster, "choose_address", lambda say: "local")
    monkeypatch.setattr(cluster, "quiet_ray_logs", lambda verbose: None)   # no handlers on pytest's streams
    with pytest.raises(KeyError):
        run_job(lambda: cluster.ensure_ray(verbose=False), [], "jobs.transcribe")
