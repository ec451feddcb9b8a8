"""The benchmark's stand-in accelerator: its waits, its results, the busy arithmetic on them, and
that an actor's concurrent calls keep each batch's rows in order and every row exactly once.

Pure: no Ray; the clock is a fake one that advances when the stand-in sleeps, so waits are exact."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from model import log_mel
from pipeline.model_ref import ModelSpec
from pipeline.sinks.schema import decoded_schema
from pipeline.sinks.summary import accelerator_busy
from pipeline.stages.inference import Transcriber, row_views
from pipeline.stages.packing import rows_per_call
from pipeline.stages.standin import (
    FRAME_SECONDS, TOKENS_PER_SECOND, StandInAccelerator, hold, hold_seconds, stand_in_ids,
)
from tests.conftest import TINY_AUDIO, TINY_MODEL

UIDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05"]


class FakeClock:
    """perf_counter/sleep pair: sleeping advances the time by exactly what was asked (thread-safe)."""

    def __init__(self, start: float = 100.0, early: float = 1.0):
        self.now, self.early, self.sleeps = start, early, []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds * self.early


@pytest.fixture(scope="module")
def feats() -> dict:
    return {u: log_mel(sf.read(TINY_AUDIO / f"{u}.flac", dtype="float32")[0]) for u in UIDS}


def decoded(uids: list[str], feats: dict, *, silent=(), errors=()) -> pa.Table:
    rows = []
    for uid in uids:
        f = np.ascontiguousarray(feats[uid], dtype=np.float32)
        bad, quiet = uid in errors, uid in silent
        rows.append({"id": uid, "source": uid, "error": "broken" if bad else None,
                     "duration_s": f.shape[0] * FRAME_SECONDS,
                     "features": None if bad or quiet else f.tobytes(),
                     "num_frames": 0 if bad or quiet else f.shape[0],
                     "segment_frames": None if bad or quiet else [f.shape[0]], "silent": quiet})
    return pa.Table.from_pylist(rows, schema=decoded_schema())


def stand_in_actor(rtfx: float, clock: FakeClock, budget: int = 300, features_on: str = "cpu") -> Transcriber:
    actor = Transcriber(ModelSpec(str(TINY_MODEL), device="cpu"), editing_steps=1,
                        max_frames_per_pack=budget, num_threads=1, with_audio=False,
                        simulate_rtfx=rtfx, features_on=features_on)
    actor.model._clock, actor.model._sleep = clock, clock.sleep
    return actor


def test_hold_seconds_is_audio_over_rtfx():
    assert hold_seconds(500, 1000.0) == pytest.approx(500 * 0.02 / 1000)  # 10 s of audio: 10 ms
    assert hold_seconds(50_000, 4000.0) == pytest.approx(0.25)
    assert hold_seconds(123, math.inf) == 0.0
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="must be > 0"):
            hold_seconds(10, bad)


def test_hold_waits_exactly_and_resumes_after_short_sleeps():
    clock = FakeClock()
    assert hold(0.25, clock=clock, sleep=clock.sleep) == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)] and clock.now == pytest.approx(100.25)
    # a sleep that returns early (signal) is resumed until the deadline
    short = FakeClock(early=0.5)   # each sleep returns after half the time asked
    held = hold(0.25, clock=short, sleep=short.sleep)
    assert 0.25 <= held < 0.25 + 1e-6
    assert short.sleeps[:2] == [pytest.approx(0.25), pytest.approx(0.125)]
    none = FakeClock()
    assert hold(0.0, clock=none, sleep=none.sleep) == 0.0 and none.sleeps == []


def test_stand_in_ids_have_speech_length_and_avoid_the_blank():
    ids = stand_in_ids(500, salt=3, vocab=512, blank=511)          # 10 s: 35 tokens
    assert len(ids) == round(10 * TOKENS_PER_SECOND) == 35
    assert all(0 <= t < 511 for t in ids) and len(set(ids)) > 20
    assert stand_in_ids(500, 3, 512, 511) == ids != stand_in_ids(500, 4, 512, 511)
    assert 7 not in stand_in_ids(2000, 0, 512, blank=7)
    assert len(stand_in_ids(1, 0, 512, 511)) == 1


def test_stand_in_results_are_well_formed(feats):
    from model import load_model

    model = load_model(TINY_MODEL, device="cpu")
    clock = FakeClock()
    stand_in = StandInAccelerator(model, 2000.0, clock=clock, sleep=clock.sleep)
    batch = [feats[u] for u in UIDS]
    results, held = stand_in.transcribe_timed(batch)
    frames = sum(f.shape[0] for f in batch)
    assert held == pytest.approx(frames * 0.02 / 2000) and clock.sleeps == [pytest.approx(held)]
    for f, r in zip(batch, results):
        assert len(r.draft_ids) == len(r.token_ids) == max(1, round(f.shape[0] * 0.02 * TOKENS_PER_SECOND))
        assert r.token_ids != r.draft_ids or len(r.draft_ids) < 5
        assert model.config.blank_token_id not in r.token_ids
        assert r.text == model._decode([r.token_ids])[0] and r.text
        assert r.positions == 2 * len(r.draft_ids) + 1 and 0 < r.confidence <= 1
    with pytest.raises(ValueError):
        StandInAccelerator(model, 0.0)


def test_actor_busy_is_held_time_over_lifetime(feats):
    clock = FakeClock()
    actor = stand_in_actor(1000.0, clock)
    table = actor(decoded(UIDS, feats, silent={"a02"}, errors={"a05"}))
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == UIDS
    assert [r["error"] for r in rows] == [None, None, None, None, "broken"]
    assert rows[1]["text"] == "" and rows[1]["infer_seconds"] is None and rows[4]["text"] is None
    done = [r for r in rows if r["text"]]
    # each row's forward share is its own audio over R (packs split the held time by frames)
    for r in done:
        assert r["infer_seconds"] == pytest.approx(feats[r["id"]].shape[0] * 0.02 / 1000)
        assert r["infer_warmup_seconds"] is None            # the stand-in does not warm up
        assert len(r["token_ids"]) == round(feats[r["id"]].shape[0] * 0.02 * TOKENS_PER_SECOND)
    held = sum(f.shape[0] for u, f in feats.items() if u not in ("a02", "a05")) * 0.02 / 1000
    assert actor.parts["held"] == pytest.approx(held)
    lifetime = rows[0]["infer_batch_end"] - actor.started_at
    assert accelerator_busy(table) == pytest.approx(round(held / lifetime, 4), abs=1e-4)


def with_samples(uids: list[str]) -> pa.Table:
    """The decode stage's rows with --features-on accelerator: samples and their frame counts."""
    from model.features import num_feature_frames

    rows = []
    for uid in uids:
        wave = sf.read(TINY_AUDIO / f"{uid}.flac", dtype="float32")[0]
        frames = num_feature_frames(wave.size)
        rows.append({"id": uid, "source": uid, "error": None, "duration_s": wave.size / 16000,
                     "samples": wave.tobytes(), "segment_samples": [wave.size], "num_frames": frames,
                     "segment_frames": [frames], "silent": False})
    return pa.Table.from_pylist(rows, schema=decoded_schema())


@pytest.mark.parametrize("features_on", ["cpu", "accelerator"])
def test_concurrent_calls_keep_rows_in_order_and_exactly_once(feats, features_on):
    clock = FakeClock()
    actor = stand_in_actor(500.0, clock, budget=120, features_on=features_on)
    table = (lambda uids: decoded(uids, feats)) if features_on == "cpu" else with_samples
    serial = {r["id"]: r["token_ids"] for r in actor(table(UIDS)).to_pylist()}
    batches = [UIDS[i:] + UIDS[:i] for i in range(6)]
    outputs: dict[int, list] = {}

    def run(k: int) -> None:
        outputs[k] = actor(table(batches[k])).to_pylist()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, uids in enumerate(batches):
        assert [r["id"] for r in outputs[k]] == uids
        assert all(r["token_ids"] == serial[r["id"]] for r in outputs[k])
    assert sum(len(o) for o in outputs.values()) == 6 * len(UIDS)
    # the held time of every call is counted once: 7 calls of the same audio
    audio = sum(f.shape[0] for f in feats.values()) * 0.02
    assert actor.parts["held"] == pytest.approx(7 * audio / 500)


def test_row_views_read_the_column_in_bulk(feats):
    table = decoded(UIDS, feats, silent={"a02"})
    table = pa.concat_tables([table.slice(0, 2), table.slice(2)])   # two chunks
    views = row_views(table.column("features"), 160)
    for got, uid in zip(views, UIDS):
        assert got.shape[0] == (0 if uid == "a02" else feats[uid].shape[0])
        if uid != "a02":
            np.testing.assert_array_equal(got, feats[uid])
    sliced = row_views(table.column("features").combine_chunks().slice(3), 160)
    np.testing.assert_array_equal(sliced[0], feats["a04"])


def test_rows_per_call_follow_the_frame_budget():
    assert rows_per_call(8000) == 40
    assert rows_per_call(100) == 8 and rows_per_call(10**7) == 512
    with pytest.raises(ValueError):
        rows_per_call(0)


def test_steady_window_leaves_out_the_first_and_last_batches():
    from bench.standin_run import steady_window

    ends = np.repeat(np.arange(100.0, 121.0), 3)          # 21 batches of 3 rows, one a second
    assert steady_window(ends) == (102.0, 118.0)          # 10 % of the 20 gaps at each end
    assert steady_window(np.array([5.0, 6.0, 7.0, 7.0])) == (6.0, 7.0)   # the first batch always out
    assert steady_window(np.array([5.0, 6.0])) is None


def test_steady_figures_count_the_batches_inside_the_window(tmp_path):
    import pyarrow.parquet as pq

    from bench.standin_run import steady_figures

    # 11 batches ending 1 s apart, each 2 rows of 10 s audio and 0.25 s held: RTFx 20, busy 0.5
    ends = [1000.0 + k for k in range(11) for _ in range(2)]
    table = pa.table({"duration_s": [10.0] * 22, "infer_seconds": [0.25] * 22, "infer_batch_end": ends,
                      "infer_actor_start": [990.0] * 22})
    pq.write_table(table.slice(0, 10), tmp_path / "a.parquet")
    pq.write_table(table.slice(10), tmp_path / "b.parquet")
    got = steady_figures(tmp_path)
    # window: the end of batch 1 to that of batch 9 (8 s), batches 2..9 inside
    assert got == {"rtfx": pytest.approx(8 * 20 / 8), "busy": pytest.approx(8 * 0.5 / 8), "batches": 11,
                   "window": (1001.0, 1009.0), "audio_seconds": 160.0}


def test_ceiling_windows_are_spread_evenly_over_the_pipeline_runs():
    from bench.standin_run import CEILING_WINDOWS, window_slots

    assert window_slots(9, 4) == [3, 2, 2, 2]
    assert window_slots(9, 1) == [9] and window_slots(2, 4) == [1, 1, 0, 0]
    assert sum(window_slots(CEILING_WINDOWS, 6)) == CEILING_WINDOWS


def test_machine_cpu_interpolates_busy_and_stolen_time_over_a_window():
    from bench.standin_run import MachineCpu

    machine = MachineCpu()
    # (epoch s, busy CPU s, stolen s, all CPU s) of a 2-core machine: 1.5 cores busy, 0.2 stolen
    machine.samples = [(100.0, 10.0, 1.0, 40.0), (102.0, 13.0, 1.4, 44.0), (104.0, 16.0, 1.8, 48.0)]
    got = machine.between(101.0, 103.0)
    assert got["cpu_seconds"] == pytest.approx(3.0) and got["steal_seconds"] == pytest.approx(0.4)
    assert got["steal_share"] == pytest.approx(0.4 / 4.0)
    with MachineCpu(every=0.01) as live:      # the real counters: busy grows while this thread spins
        t0 = time.time()
        while time.time() - t0 < 0.2:
            pass
    import psutil

    span = live.samples[-1][0] - live.samples[0][0]
    assert len(live.samples) >= 3 and span >= 0.2
    # at least most of this thread's spin, at most every core for the whole span
    assert 0.1 < live.between(live.samples[0][0], live.samples[-1][0])["cpu_seconds"] <= psutil.cpu_count() * span + 0.05


def test_spread_and_cores_budget_arithmetic():
    from bench.standin_run import cores_budget, limiter, spread

    assert spread([1.0, 1.1, 0.9]) == pytest.approx(0.2)
    assert spread([2.0]) is None and spread([]) is None and spread([None, 3.0]) is None
    costs = {"flac": {"cores_per_1000x": 0.5, "decode_cores_per_1000x": 0.2},
             "opus": {"cores_per_1000x": None, "error": "no decoder"}}
    budget = cores_budget(costs, 1e-5, 4e-6)
    # 4 x decoding (+ features) per 1000x, plus 4000 audio s/s x the actor's host CPU s per audio s
    assert budget == {"flac": {"features_on_cpu": pytest.approx(2.0 + 0.04),
                               "features_on_accelerator": pytest.approx(0.8 + 0.016)}}
    assert limiter(4000, 0.5, decode_capacity=2400, actor_capacity=90_000) == "decode CPU"
    assert limiter(4000, 0.5, decode_capacity=9000, actor_capacity=3000) == "actor host time"
    assert limiter(4000, 0.5, decode_capacity=9000, actor_capacity=90_000) == "Ray transfer/scheduling"
    assert limiter(4000, 0.96, decode_capacity=100, actor_capacity=100) == "none"


def test_compare_runs_names_each_figure_and_its_difference():
    from bench.core import compare_runs

    a = {"compared_ratios": {"x": {"value": 1.0}, "y": {"value": 0.5}, "only_a": {"value": 2.0}}}
    b = {"compared_ratios": {"x": {"value": 1.05}, "y": {"value": 0.6}}}
    lines, ok = compare_runs(a, b)
    assert not ok
    assert [line.split()[0] for line in lines[1:]] == ["x", "y", "only_a"]
    assert lines[1].split()[-1] == "4.9%" and lines[2].split()[-3:] == ["18.2%", ">", "10%"]
    assert lines[3].endswith("only in run 1: not compared")
    assert compare_runs(a, a)[1]
    # a figure in one run only is not agreement: the runs did not measure the same things
    def run(**values):
        return {"compared_ratios": {k: {"value": v} for k, v in values.items()}}

    assert compare_runs(run(x=1.0, y=0.51), run(x=1.0, y=0.5))[1]
    assert not compare_runs(run(x=1.0, y=0.51, z=3.0), run(x=1.0, y=0.5))[1]
