"""The accelerator busy fraction: per-actor forward time (warm-up forwards included) over actor
lifetime; the warm-up kept out of ``infer_seconds`` (the leaderboard RTFx)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from model import log_mel
from pipeline import TranscribeConfig, run_transcribe
from pipeline.model_ref import ModelSpec
from pipeline.sinks.schema import decoded_schema
from pipeline.sinks.summary import accelerator_busy
from pipeline.stages.inference import WARM_UP_PACKS, Transcriber
from tests.conftest import TINY_AUDIO, TINY_MODEL


def test_busy_fraction_sums_forward_time_over_actor_lifetimes():
    table = pa.Table.from_pylist([
        {"infer_actor": "A", "infer_actor_start": 100.0, "infer_batch_end": 110.0, "infer_seconds": 3.0},
        {"infer_actor": "A", "infer_actor_start": 100.0, "infer_batch_end": 120.0, "infer_seconds": 4.0},
        {"infer_actor": "A", "infer_actor_start": 100.0, "infer_batch_end": 120.0, "infer_seconds": 5.0},
        {"infer_actor": "B", "infer_actor_start": 105.0, "infer_batch_end": 115.0, "infer_seconds": 6.0},
        # an error row passed through an actor: no forward time, still inside its lifetime
        {"infer_actor": "B", "infer_actor_start": 105.0, "infer_batch_end": 112.0, "infer_seconds": None},
        {"infer_actor": None, "infer_actor_start": None, "infer_batch_end": None, "infer_seconds": None},
    ])
    # A: 12 s busy of 20 s alive; B: 6 s of 10 s  ->  18 / 30
    assert accelerator_busy(table) == 0.6
    assert accelerator_busy(table.slice(5)) is None
    assert accelerator_busy(table.drop_columns(["infer_actor"])) is None
    # warm-up forwards are forward time too: A's first row warmed up for 3 s -> 21 / 30
    warm = pa.array([3.0, None, None, None, None, None], pa.float64())
    assert accelerator_busy(table.append_column("infer_warmup_seconds", warm)) == 0.7


def test_results_written_before_warmup_was_recorded_still_summarise(tmp_path):
    """An output resumed from files without ``infer_warmup_seconds``: their rows count their
    timed forwards; the new file's warm-up counts too."""
    from pipeline.sinks.output import read_columns
    from pipeline.sinks.summary import SUMMARY_COLUMNS
    from pipeline.storage import Storage

    old = {"id": ["a"], "infer_actor": ["A"], "infer_actor_start": [100.0], "infer_batch_end": [110.0],
           "infer_seconds": [5.0]}
    pq.write_table(pa.table(old), tmp_path / "old.parquet")
    new = {**old, "id": ["b"], "infer_actor": ["B"], "infer_warmup_seconds": [2.0]}
    pq.write_table(pa.table(new), tmp_path / "new.parquet")
    table = read_columns(Storage.from_env(), str(tmp_path),
                         [c for c in SUMMARY_COLUMNS if c.startswith("infer") or c == "id"])
    assert sorted(table.column("infer_warmup_seconds").to_pylist(), key=str) == [2.0, None]
    assert accelerator_busy(table) == 0.6  # (5 + 5 + 2) / (10 + 10)


class CountingModel:
    """The real model, with a count of its forward calls (a spy: every call runs the model)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def transcribe(self, features, **kwargs):
        self.calls.append(len(features))
        return self.model.transcribe(features, **kwargs)


def _decoded_batch(uids: list[str], waveforms: dict) -> pa.Table:
    rows = []
    for uid in uids:
        feats = np.ascontiguousarray(log_mel(waveforms[uid]), dtype=np.float32)
        rows.append({"id": uid, "source": uid, "error": None, "duration_s": waveforms[uid].size / 16000,
                     "features": feats.tobytes(), "num_frames": feats.shape[0],
                     "segment_frames": [feats.shape[0]], "silent": False})
    return pa.Table.from_pylist(rows, schema=decoded_schema())


def test_actor_warms_up_on_its_first_real_packs_untimed(expected):
    uids = ["a02", "a04", "a05", "a03_twoblocks"]
    waveforms = {uid: sf.read(TINY_AUDIO / f"{uid}.flac", dtype="float32")[0] for uid in uids}
    actor = Transcriber(ModelSpec(str(TINY_MODEL), device="cpu"), editing_steps=1, max_frames_per_pack=1,
                        num_threads=1, with_audio=False)
    actor.model = CountingModel(actor.model)
    first = actor(_decoded_batch(uids, waveforms)).to_pylist()
    # budget 1 frame: one pack per utterance; the first WARM_UP_PACKS packs ran twice, the rest once
    assert WARM_UP_PACKS == 2
    assert actor.model.calls == [1, 1, 1, 1, 1, 1]
    # rows are in input order; packs run shortest first: the two shortest carry the warm-up time
    lengths = {uid: waveforms[uid].size for uid in uids}
    warmed = sorted(uids, key=lambda u: lengths[u])[:WARM_UP_PACKS]
    assert {r["id"] for r in first if r["infer_warmup_seconds"]} == set(warmed)
    assert all(r["infer_warmup_seconds"] > 0 for r in first if r["id"] in warmed)
    second = actor(_decoded_batch(uids[:2], waveforms)).to_pylist()
    assert actor.model.calls[6:] == [1, 1]
    assert all(r["infer_warmup_seconds"] is None for r in second)
    for row in first + second:
        assert row["token_ids"] == expected[row["id"]]["step1_ids"]
        assert row["text"] == expected[row["id"]]["step1_text"]
        assert row["infer_seconds"] > 0
        assert row["infer_actor"] == first[0]["infer_actor"]
        assert row["infer_actor_start"] == actor.started_at
    assert first[0]["infer_batch_end"] <= second[0]["infer_batch_end"]
    assert all(r["infer_batch_end"] > actor.started_at for r in first)


def test_summary_reports_busy_fraction_of_the_written_rows(ray_session, tmp_path):
    out = tmp_path / "out"
    summary = run_transcribe(TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(out), model=str(TINY_MODEL),
                                              device="cpu", actors=(1, 1)), echo=lambda *a: None)
    written = json.loads((out / "_summary.json").read_text())
    assert written["accelerator_busy"] == summary["accelerator_busy"]
    rows = [r for f in sorted(out.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 6 and {r["infer_actor"] for r in rows} == {rows[0]["infer_actor"]}
    busy = sum((r["infer_seconds"] or 0.0) + (r["infer_warmup_seconds"] or 0.0) for r in rows)
    assert any(r["infer_warmup_seconds"] for r in rows)  # the first packs ran twice
    alive = max(r["infer_batch_end"] for r in rows) - rows[0]["infer_actor_start"]
    assert written["accelerator_busy"] == pytest.approx(round(busy / alive, 4), abs=1e-4)
    assert 0 < written["accelerator_busy"] < 1
