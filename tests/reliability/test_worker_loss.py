"""An inference actor dies mid-job (``os._exit`` through the test-only fault switch): Ray restarts
it and retries the lost batch; the job completes with every id exactly once and correct results."""

from __future__ import annotations

from pipeline import TranscribeConfig, run_transcribe
from pipeline.faults import FAULT_EXIT_AFTER_BATCHES, FAULT_ONCE_FILE, should_exit
from tests.oracle import assert_rows_match_reference
from tests.reliability.conftest import MODEL, copy_corpus, id_counts, rows_by_id


def test_fault_switch_is_off_unless_set_and_fires_once(tmp_path):
    assert not should_exit(100, environ={})
    env = {FAULT_EXIT_AFTER_BATCHES: "2"}
    assert [should_exit(n, env) for n in range(4)] == [False, False, True, True]
    once = {**env, FAULT_ONCE_FILE: str(tmp_path / "fired")}
    assert [should_exit(n, once) for n in range(4)] == [False, False, True, False]
    assert (tmp_path / "fired").exists()


def test_actor_killed_mid_job_the_job_completes_exactly_once(ray_session, tmp_path, monkeypatch):
    origin = copy_corpus(tmp_path / "in", copies=24)            # 144 rows: 3 actor batches
    fired = tmp_path / "fault-fired"
    # Forwarded to the actors through Ray's runtime_env by the job (pipeline/run.py).
    monkeypatch.setenv(FAULT_EXIT_AFTER_BATCHES, "1")
    monkeypatch.setenv(FAULT_ONCE_FILE, str(fired))
    out = tmp_path / "out"
    summary = run_transcribe(TranscribeConfig(inputs=(str(tmp_path / "in"),), output=str(out),
                                              model=MODEL, actors=(1, 1)))
    assert fired.exists(), "the actor never died: the fault switch did not fire"
    counts = id_counts(out)
    assert sorted(counts) == sorted(origin) and set(counts.values()) == {1}
    assert_rows_match_reference(rows_by_id(out).values(), ids=list(origin), origin=origin)
    assert (summary["rows"], summary["rows_inferred"], summary["errors"]) == (144, 144, 0)
