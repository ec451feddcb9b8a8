"""The inference stage: an actor that loads the model once and transcribes packed batches.

Each call sorts its rows by length, splits them into packs under the frame budget, runs one
``NarModel.transcribe`` per pack and returns the rows in input order, without the features.
Error rows and silent rows pass through without touching the model.

Timing (the accelerator busy fraction, ``pipeline/sinks/summary.py``): each row carries its share of
its packs' forward time (``infer_seconds``, steady state only: an actor's first ``WARM_UP_PACKS``
packs run once more first, and that time is the row's ``infer_warmup_seconds``), the actor that
computed it (``infer_actor``), when that actor started (``infer_actor_start``, before its model
loaded) and when the row's batch ended (``infer_batch_end``), both Unix-epoch seconds on the
actor's node.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pyarrow as pa

from pipeline.faults import on_batch
from pipeline.model_ref import ModelSpec
from pipeline.stages.passthrough import carry_columns
from pipeline.stages.packing import plan_packs, restore_order
from pipeline.sinks.schema import output_schema, rows_to_table
from pipeline.stages.segment import joint_confidence, join_texts
from pipeline.stages.timestamps import run_pack, time_columns
from pipeline.stages.prepare import current_node_id

FEATURE_DIM = 160
# Each actor runs its first packs once untimed before their timed run (the leaderboard's warm-up).
WARM_UP_PACKS = 2


def features_of(row: dict) -> np.ndarray:
    """The ``[num_frames, 160]`` float32 features stored as bytes by the decode stage."""
    flat = np.frombuffer(row["features"], dtype=np.float32)
    return flat.reshape(row["num_frames"], FEATURE_DIM).copy()  # writable, as torch expects


def split_segments(features: np.ndarray, segment_frames: list[int] | None) -> list[np.ndarray]:
    """A row's features cut back into its segments (one piece when it was not segmented)."""
    if not segment_frames:
        return [features]
    bounds = np.cumsum(segment_frames)[:-1]
    return np.split(features, bounds)


def result_columns(results: list) -> dict:
    """Output columns of one input from the ``Transcription`` of each of its segments, in order."""
    if len(results) == 1:
        r = results[0]
        return {"text": r.text, "draft_text": r.draft_text, "token_ids": [int(t) for t in r.token_ids],
                "confidence": float(r.confidence)}
    positions = [r.positions for r in results]  # editor positions of each segment's last pass
    return {"text": join_texts([r.text for r in results]),
            "draft_text": join_texts([r.draft_text for r in results]),
            "token_ids": [int(t) for r in results for t in r.token_ids],
            "confidence": joint_confidence([r.confidence for r in results], positions)}


SILENT_COLUMNS = {"text": "", "draft_text": "", "token_ids": [], "confidence": None}
ERROR_COLUMNS = {"text": None, "draft_text": None, "token_ids": None, "confidence": None}


class Transcriber:
    """Ray Data callable class: ``__init__`` loads the model, ``__call__`` transcribes a batch."""

    def __init__(self, spec: ModelSpec, *, editing_steps: int, max_frames_per_pack: int,
                 num_threads: int, with_audio: bool, timestamps: str = "none",
                 passthrough: tuple[str, ...] = ()):
        import torch

        from model import load_model

        # The actor's lifetime starts before the model loads: loading is paid-for accelerator time too.
        self.started_at = time.time()
        self.actor_id = f"{current_node_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.warm_packs_left = WARM_UP_PACKS
        torch.set_num_threads(max(1, int(num_threads)))
        self.model = load_model(spec.name_or_path, revision=spec.revision, device=spec.device,
                                dtype=spec.dtype, numerics=spec.numerics)
        self.model_name = spec.label or str(getattr(self.model, "name", spec.name_or_path))
        self.editing_steps = editing_steps
        self.max_frames_per_pack = max_frames_per_pack
        self.timestamps = timestamps  # none|segment|word: pipeline/stages/timestamps.py
        self.schema = output_schema(with_audio)
        self.passthrough = tuple(passthrough)   # user columns carried through (pipeline/data.py)
        self.node = current_node_id()
        self.batches_done = 0   # for the test-only fault switch (pipeline/faults.py)

    def _warm_up(self, batch: list[np.ndarray]) -> float:
        """Run one of the actor's first real packs once before its timed run, as the Open ASR
        Leaderboard warms up on real batches before timing: lazy initialisation, allocator growth
        and kernel selection for real shapes are then not charged to ``infer_seconds``. Returns the
        seconds it took (forward time all the same). Failures are left to the timed run."""
        started = time.perf_counter()
        try:
            self.model.transcribe(batch, editing_steps=self.editing_steps)
        except Exception:  # noqa: BLE001 - the timed run below reports it on the row
            pass
        return time.perf_counter() - started

    def _transcribe(self, features: list[np.ndarray]) -> tuple[list, list[float], list[float]]:
        """Results per utterance (a ``Transcription`` or the error text), seconds spent on each (its
        frame share of its pack's time) and warm-up seconds likewise, all in input order."""
        packs = plan_packs([f.shape[0] for f in features], self.max_frames_per_pack)
        per_pack, seconds, warm = [], [], []
        for pack in packs:
            batch = [features[i] for i in pack]
            warm_s = 0.0
            if self.warm_packs_left > 0:
                self.warm_packs_left -= 1
                warm_s = self._warm_up(batch)
            started = time.perf_counter()
            try:
                per_pack.append(run_pack(self.model, batch, self.editing_steps, self.timestamps))
            except Exception:  # noqa: BLE001 - retry alone to pin the failure on one row
                per_pack.append([self._transcribe_one(f) for f in batch])
            elapsed, frames = time.perf_counter() - started, sum(f.shape[0] for f in batch)
            seconds.append([elapsed * f.shape[0] / frames for f in batch])
            warm.append([warm_s * f.shape[0] / frames for f in batch])
        return restore_order(packs, per_pack), restore_order(packs, seconds), restore_order(packs, warm)

    def _transcribe_one(self, features: np.ndarray):
        try:
            return run_pack(self.model, [features], self.editing_steps, self.timestamps)[0]
        except Exception as e:  # noqa: BLE001
            return f"inference failed: {type(e).__name__}: {e}"

    def __call__(self, batch: pa.Table) -> pa.Table:
        on_batch(self.batches_done)
        self.batches_done += 1
        rows = batch.drop_columns(["features", *(n for n in self.passthrough
                                                 if n in batch.column_names)]).to_pylist()
        todo = [i for i, r in enumerate(rows) if not r["error"] and not r["silent"]]
        frames = batch.column("features").to_pylist() if todo else []
        # Every segment of every input goes into the same packs; results are regrouped per input.
        pieces, owners = [], []
        for i in todo:
            whole = features_of({"features": frames[i], "num_frames": rows[i]["num_frames"]})
            for piece in split_segments(whole, rows[i].get("segment_frames")):
                pieces.append(piece)
                owners.append(i)
        results: dict[int, list] = {}
        spent: dict[int, float] = {}
        warmed: dict[int, float] = {}
        outcomes, seconds, warm = self._transcribe(pieces) if pieces else ([], [], [])
        ended = time.time()
        for i, result, sec, warm_s in zip(owners, outcomes, seconds, warm):
            results.setdefault(i, []).append(result)
            spent[i] = spent.get(i, 0.0) + sec
            if warm_s:
                warmed[i] = warmed.get(i, 0.0) + warm_s
        out = []
        for i, row in enumerate(rows):
            result = results.get(i)
            failed = [r for r in result or [] if isinstance(r, str)]
            if failed:
                row["error"] = failed[0]
            if row["error"]:
                row.update(ERROR_COLUMNS)
            elif row["silent"]:
                row.update(SILENT_COLUMNS)
            else:
                row.update(result_columns(result))
            row.update(time_columns(row, None if row["error"] or row["silent"] else result,
                                    self.timestamps, self.model.decoder))
            row.update(model=self.model_name, numerics=self.model.numerics, infer_node=self.node,
                       infer_seconds=spent.get(i),
                       infer_warmup_seconds=warmed.get(i),
                       infer_actor=self.actor_id, infer_actor_start=self.started_at, infer_batch_end=ended)
            out.append(row)
        return carry_columns(rows_to_table(out, self.schema), batch, self.passthrough)
