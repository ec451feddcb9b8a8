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
import threading
import time
import uuid
from collections import defaultdict

import numpy as np
import pyarrow as pa

from pipeline.faults import on_batch
from pipeline.model_ref import ModelSpec
from pipeline.stages.packing import plan_packs, restore_order
from pipeline.sinks.schema import output_schema
from pipeline.stages.passthrough import carry_columns
from pipeline.stages.segment import joint_confidence, join_texts
from pipeline.stages.prepare import current_node_id
from pipeline.stages.timestamps import run_pack, time_columns

FEATURE_DIM = 160
# Each actor runs its first packs once untimed before their timed run (the leaderboard's warm-up).
WARM_UP_PACKS = 2
# Calls an actor runs at once (a threaded actor): one computes while the next prepares its batch.
CONCURRENT_CALLS = 2


def _chunk_rows(arr: pa.Array, width: int, refusal: str) -> tuple[np.ndarray, np.ndarray]:
    """One Arrow binary array's rows as ``(flat, starts)`` over its own buffers (no copy)."""
    offset_type = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    n = len(arr)
    buffers = arr.buffers()
    if n == 0 or buffers[2] is None:
        return np.zeros((0, width), np.float32), np.zeros(n + 1, np.int64)
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[arr.offset:arr.offset + n + 1].astype(np.int64)
    row_bytes = width * 4
    if np.any((offsets - offsets[0]) % row_bytes):
        raise ValueError(refusal)
    data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    flat = data.view(np.float32).reshape(-1, width)
    return flat, (offsets - offsets[0]) // row_bytes


def row_views(column, width: int) -> list[np.ndarray]:
    """Every row of a binary column of float32 values as an ``[n, width]`` view of the Arrow
    buffers (``[n]`` for ``width == 1``; never written to), chunk by chunk, without copying any
    chunk (``combine_chunks`` would copy the whole column); an empty view for null rows.

    Raises:
        ValueError: a row's bytes are not whole rows of ``width`` float32 values.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    refusal = ("features bytes are not whole [160] float32 frames" if width == FEATURE_DIM
               else "samples bytes are not whole float32 samples")
    views: list[np.ndarray] = []
    for chunk in chunks:
        flat, starts = _chunk_rows(chunk, width, refusal)
        if width == 1:
            flat = flat.reshape(-1)
        bounds = starts.tolist()
        views.extend(flat[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    return views


def split_segments(features: np.ndarray, segment_frames: list[int] | None) -> list[np.ndarray]:
    """A row's features (or samples) cut back into its segments (one piece when it was not
    segmented); ``segment_frames``: each segment's length along the first axis."""
    if not segment_frames or len(segment_frames) == 1:
        return [features]
    bounds = np.cumsum(segment_frames)[:-1]
    return np.split(features, bounds)


def result_columns(results: list) -> dict:
    """Output columns of one input from the ``Transcription`` of each of its segments, in order."""
    if len(results) == 1:
        r = results[0]
        return {"text": r.text, "draft_text": r.draft_text, "token_ids": _ints(r.token_ids),
                "confidence": float(r.confidence)}
    positions = [r.positions for r in results]  # editor positions of each segment's last pass
    return {"text": join_texts([r.text for r in results]),
            "draft_text": join_texts([r.draft_text for r in results]),
            "token_ids": [t for r in results for t in _ints(r.token_ids)],
            "confidence": joint_confidence([r.confidence for r in results], positions)}


def _ints(ids) -> list[int]:
    """Token ids as a list of Python ints (the model's are already; numpy ids are converted)."""
    if isinstance(ids, list) and all(type(t) is int for t in ids):
        return ids
    return [int(t) for t in ids]


SILENT_COLUMNS = {"text": "", "draft_text": "", "token_ids": [], "confidence": None}
ERROR_COLUMNS = {"text": None, "draft_text": None, "token_ids": None, "confidence": None}


class Transcriber:
    """Ray Data callable class: ``__init__`` loads the model, ``__call__`` transcribes a batch.

    Calls may run concurrently (``CONCURRENT_CALLS`` per actor, a threaded actor): the host work of
    one batch (Arrow → numpy, packing, results → Arrow) overlaps the forwards of another, and a
    lock lets one call at a time use the accelerator. Each call returns its own rows in input order.
    Each pack is copied once, into a buffer of the actor's :class:`PackBuffers` (pinned on CUDA)
    that the call holds until its forwards are done; the model takes it whole (``joined_view``).

    ``simulate_rtfx`` (benchmark only): the forward is replaced by the stand-in accelerator of
    ``pipeline/stages/standin.py`` at that RTFx (``inf``: no wait); its held time is the forward time.
    ``features_on="accelerator"``: rows carry 16 kHz samples (``samples``, ``segment_samples``) instead
    of features; packs are planned on the frame counts the decoders computed from the sample counts,
    and each pack's features are computed in one :func:`log_mel_batch` call on the model's device
    (CUDA when there, else CPU) under the model's numerics profile, inside the accelerator lock; a
    row's ``features_seconds`` is then its frame share of that time (``infer_seconds`` stays the
    forward's). The output is the same as with features from the decoders.

    ``parts`` sums the seconds of each part of the calls' host work (``arrow_to_numpy``, ``packing``,
    ``features`` (on the actor; ``features_wall`` the same by wall time, the device's time on CUDA),
    ``forward``, ``results_to_arrow``; and, with the stand-in,
    ``to_device`` and ``held`` inside ``forward``), for the benchmark's breakdown, by ``clock``
    (``time.perf_counter``; the benchmark sets ``time.thread_time`` to count CPU time).
    """

    def __init__(self, spec: ModelSpec, *, editing_steps: int, max_frames_per_pack: int,
                 num_threads: int, with_audio: bool, timestamps: str = "none",
                 passthrough: tuple[str, ...] = (), simulate_rtfx: float | None = None,
                 features_on: str = "cpu"):
        import torch

        from model import load_model

        # The actor's lifetime starts before the model loads: loading is paid-for accelerator time too.
        self.started_at = time.time()
        self.actor_id = f"{current_node_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.warm_packs_left = WARM_UP_PACKS
        torch.set_num_threads(max(1, int(num_threads)))
        self.model = load_model(spec.name_or_path, revision=spec.revision, device=spec.device,
                                dtype=spec.dtype, numerics=spec.numerics)
        self.numerics = getattr(self.model, "numerics", None)
        self.model_name = spec.label or str(getattr(self.model, "name", spec.name_or_path))
        if simulate_rtfx is not None:
            from pipeline.stages.standin import StandInAccelerator

            self.model = StandInAccelerator(self.model, simulate_rtfx)
            self.warm_packs_left = 0   # nothing to warm up: the stand-in runs no kernels
        self.editing_steps = editing_steps
        self.max_frames_per_pack = max_frames_per_pack
        self.timestamps = timestamps  # none|segment|word: pipeline/stages/timestamps.py
        self.schema = output_schema(with_audio)
        self.passthrough = tuple(passthrough)   # user columns carried through (pipeline/data.py)
        self.node = current_node_id()
        self.batches_done = 0   # for the test-only fault switch (pipeline/faults.py)
        self.accelerator = threading.Lock()   # one forward at a time on the actor's accelerator
        self._counters = threading.Lock()
        self.parts: dict[str, float] = defaultdict(float)
        self.clock = time.perf_counter
        if features_on not in ("cpu", "accelerator"):
            raise ValueError(f"features_on must be 'cpu' or 'accelerator', got {features_on!r}")
        self.features_on = features_on
        device = getattr(self.model, "device", None)
        self.buffers = PackBuffers(pinned=getattr(device, "type", "cpu") == "cuda",
                                   least=max_frames_per_pack * (2 * FEATURE_DIM if features_on == "accelerator"
                                                                else FEATURE_DIM))

    def _add(self, part: str, seconds: float) -> None:
        with self._counters:
            self.parts[part] += seconds

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

    def _forward(self, batch: list[np.ndarray]) -> tuple[list, float]:
        """One pack's results and its forward seconds (the stand-in's held time, or the call's)."""
        timed = getattr(self.model, "transcribe_timed", None)
        if timed is not None:
            results, held = timed(batch, self.editing_steps, parts=self.parts, clock=self.clock)
            return results, held
        started = time.perf_counter()
        results = run_pack(self.model, batch, self.editing_steps, self.timestamps)
        return results, time.perf_counter() - started

    def _transcribe(self, pieces: list[np.ndarray], frames: list[int]) -> tuple[list, list, list, list]:
        """Results per utterance (a ``Transcription`` or the error text), seconds spent on each (its
        frame share of its pack's forward time), warm-up seconds and features seconds likewise, all
        in input order. ``pieces`` are features, or samples with ``features_on="accelerator"``;
        ``frames`` their feature frames."""
        started = self.clock()
        packs = plan_packs(frames, self.max_frames_per_pack)
        taken: list[np.ndarray] = []
        try:
            for pack in packs:
                taken.append(self.buffers.take(sum(pieces[i].size for i in pack)))
            batches = [pack_features([pieces[i] for i in pack], out) for pack, out in zip(packs, taken)]
            self._add("packing", self.clock() - started)
            return self._run_packs(packs, batches, frames)
        finally:
            self.buffers.give(taken)

    def _run_packs(self, packs: list[list[int]], batches: list[list[np.ndarray]],
                   frames: list[int]) -> tuple[list, list, list, list]:
        """:meth:`_transcribe`'s forwards, one pack at a time on the accelerator."""
        per_pack, seconds, warm, featured = [], [], [], []
        with self.accelerator:
            for pack, batch in zip(packs, batches):
                shares = np.asarray([frames[i] for i in pack], np.float64) / sum(frames[i] for i in pack)
                features_s, refused = 0.0, {}
                if self.features_on == "accelerator":
                    batch, refused, features_s = self._features(batch)
                featured.append((features_s * shares).tolist())
                if refused:   # rows whose features failed are not in the forward: no share of it
                    kept = np.asarray([0.0 if k in refused else frames[i]
                                       for k, i in enumerate(pack)], np.float64)
                    shares = kept / kept.sum() if kept.sum() else kept
                forward_started = self.clock()
                warm_s = 0.0
                with self._counters:
                    warming = self.warm_packs_left > 0 and bool(batch)
                    self.warm_packs_left -= warming
                if warming:
                    warm_s = self._warm_up(batch)
                try:
                    results, elapsed = self._forward(batch) if batch else ([], 0.0)
                except Exception:  # noqa: BLE001 - retry alone to pin the failure on one row
                    item_started = time.perf_counter()
                    results = [self._transcribe_one(f) for f in batch]
                    elapsed = time.perf_counter() - item_started
                self._add("forward", self.clock() - forward_started)
                if refused:   # samples whose features failed keep their place, as error texts
                    done = iter(results)
                    results = [refused[k] if k in refused else next(done) for k in range(len(pack))]
                per_pack.append(results)
                seconds.append((elapsed * shares).tolist())
                warm.append((warm_s * shares).tolist())
        return (restore_order(packs, per_pack), restore_order(packs, seconds), restore_order(packs, warm),
                restore_order(packs, featured))

    def _features(self, samples: list[np.ndarray]) -> tuple[list, dict[int, str], float]:
        """One pack's features from its samples in one batched call on the model's device: the
        features of those that succeeded (in order), the error text of each that failed (by its
        position in the pack) and the seconds it took (the device synchronised on CUDA)."""
        import torch

        from model.nar import joined_view
        from pipeline.stages.features_batch import log_mel_batch

        started = time.perf_counter()
        clock_started = self.clock()
        device = self.model.device
        if samples:
            joined = joined_view(samples)
            whole = torch.from_numpy(joined if joined is not None else np.concatenate(samples))
            if device.type == "cuda":
                whole = whole.pin_memory().to(device, non_blocking=True)   # pinned already: no copy
            samples = list(whole.split([int(w.shape[0]) for w in samples]))
        refused: dict[int, str] = {}
        try:
            feats = log_mel_batch(samples, numerics=self.numerics or "transformers", device=device)
        except Exception:  # noqa: BLE001 - one at a time, to pin the failure on its row
            feats = []
            for k, w in enumerate(samples):
                try:
                    feats.extend(log_mel_batch([w], numerics=self.numerics or "transformers", device=device))
                except Exception as e:  # noqa: BLE001
                    refused[k] = f"features failed: {type(e).__name__}: {e}"
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        # the ``clock`` interval opens after the wall one and closes before it, so on one thread the
        # CPU time can never exceed the wall time
        self._add("features", self.clock() - clock_started)
        elapsed = time.perf_counter() - started
        self._add("features_wall", elapsed)   # device time on CUDA, whatever ``clock`` counts
        return feats, refused, elapsed

    def _transcribe_one(self, features: np.ndarray):
        try:
            return run_pack(self.model, [features], self.editing_steps, self.timestamps)[0]
        except Exception as e:  # noqa: BLE001
            return f"inference failed: {type(e).__name__}: {e}"

    def __call__(self, batch: pa.Table) -> pa.Table:
        with self._counters:
            number = self.batches_done
            self.batches_done += 1
        on_batch(number)
        started = self.clock()
        n = batch.num_rows
        errors = batch.column("error").to_pylist()
        silent = batch.column("silent").fill_null(False).to_pylist()
        todo = [i for i in range(n) if not errors[i] and not silent[i]]
        pieces, frames, owners = self._pieces(batch, todo) if todo else ([], [], [])
        self._add("arrow_to_numpy", self.clock() - started)
        outcomes, seconds, warm, featured = self._transcribe(pieces, frames) if pieces else ([], [], [], [])
        ended = time.time()
        started = self.clock()
        results: dict[int, list] = {}
        spent: dict[int, float] = {}
        warmed: dict[int, float] = {}
        features_s: dict[int, float] = {}
        for i, result, sec, warm_s, feat_s in zip(owners, outcomes, seconds, warm, featured):
            results.setdefault(i, []).append(result)
            spent[i] = spent.get(i, 0.0) + sec
            features_s[i] = features_s.get(i, 0.0) + feat_s
            if warm_s:
                warmed[i] = warmed.get(i, 0.0) + warm_s
        columns = {"text": [], "draft_text": [], "token_ids": [], "confidence": []}
        times = TimeColumns(batch, self.timestamps)
        for i in range(n):
            result = results.get(i)
            failed = [r for r in result or [] if isinstance(r, str)]
            if failed:
                errors[i] = failed[0]
            if errors[i]:
                values = ERROR_COLUMNS
            elif silent[i]:
                values = SILENT_COLUMNS
            else:
                values = result_columns(result)
            for key in columns:
                columns[key].append(values[key])
            times.add(i, errors[i], silent[i], None if errors[i] or silent[i] else result,
                      getattr(self.model, "decoder", None))
        columns.update(times.columns())
        columns.update(error=errors, infer_seconds=[spent.get(i) for i in range(n)],
                       infer_warmup_seconds=[warmed.get(i) for i in range(n)])
        if self.features_on == "accelerator":
            columns["features_seconds"] = [features_s.get(i) for i in range(n)]
        constants = {"model": self.model_name, "numerics": self.numerics, "infer_node": self.node,
                     "infer_actor": self.actor_id,
                     "infer_actor_start": self.started_at, "infer_batch_end": ended}
        out = carry_columns(output_table(batch, columns, constants, self.schema), batch, self.passthrough)
        self._add("results_to_arrow", self.clock() - started)
        return out

    def _pieces(self, batch: pa.Table, todo: list[int]) -> tuple[list[np.ndarray], list[int], list[int]]:
        """Every segment of the rows ``todo`` (features, or samples with ``features_on="accelerator"``),
        the feature frames of each and the row it belongs to. Every segment of every input goes into
        the same packs; results are regrouped per input."""
        n = batch.num_rows
        names = batch.column_names
        frames_of = batch.column("segment_frames").to_pylist() if "segment_frames" in names else [None] * n
        if self.features_on == "accelerator":
            rows = row_views(batch.column("samples"), 1)
            lengths = batch.column("segment_samples").to_pylist()
        else:
            rows = row_views(batch.column("features"), FEATURE_DIM)
            lengths = frames_of
        pieces, frames, owners = [], [], []
        for i in todo:
            split = split_segments(rows[i], lengths[i])
            pieces.extend(split)
            frames.extend(frames_of[i] if frames_of[i] else [p.shape[0] for p in split])
            owners.extend([i] * len(split))
        return pieces, frames, owners


class TimeColumns:
    """``--timestamps`` columns of one batch (``timestamps_status``, ``words``, ``segment_texts``, and
    ``segments`` where a row's times change them), gathered row by row from
    :func:`pipeline.stages.timestamps.time_columns`; nothing at all with ``--timestamps none``."""

    FIELDS = ("start_s", "duration_s", "segments")

    def __init__(self, batch: pa.Table, timestamps: str):
        self.timestamps = timestamps
        self.values: dict[str, list] = {}
        if timestamps == "none":
            return
        self.n = batch.num_rows
        self.rows = {k: (batch.column(k).to_pylist() if k in batch.column_names else [None] * self.n)
                     for k in self.FIELDS}

    def add(self, i: int, error, silent, results, decoder) -> None:
        if self.timestamps == "none":
            return
        row = {"error": error, "silent": silent, **{k: v[i] for k, v in self.rows.items()}}
        got = time_columns(row, results, self.timestamps, decoder)
        got.setdefault("segments", row["segments"])
        for key, value in got.items():
            self.values.setdefault(key, []).append(value)

    def columns(self) -> dict[str, list]:
        return self.values


class PackBuffers:
    """Host buffers for packs, kept and reused by one actor: a fresh multi-megabyte array for every
    pack costs a page fault per 4 KiB page on first touch, several times the copy itself on a VM
    (``jobs.benchmark``'s actor ceiling). On CUDA they are pinned, so a pack goes to the device
    without another copy and without blocking. Thread-safe; a buffer is the caller's from
    :meth:`take` until it is given back (:meth:`give`), after its pack's forward."""

    def __init__(self, *, pinned: bool = False, keep: int = 8, least: int = 0):
        self.pinned, self.keep, self.least = pinned, keep, least
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, values: int) -> np.ndarray:
        """A float32 ``[≥ values]`` buffer: the smallest free one that holds them, else a new one
        of ``max(values, least)``."""
        with self._lock:
            fits = [k for k, b in enumerate(self._free) if b.size >= values]
            if fits:   # by position: arrays compare element-wise, not by identity
                return self._free.pop(min(fits, key=lambda k: self._free[k].size))
        size = max(int(values), self.least)
        if self.pinned:
            import torch

            return torch.empty(size, dtype=torch.float32, pin_memory=True).numpy()
        return np.empty(size, np.float32)

    def give(self, buffers) -> None:
        """Return buffers for reuse; beyond ``keep`` free ones the smallest are let go."""
        with self._lock:
            self._free.extend(b for b in buffers if b is not None)
            self._free.sort(key=lambda b: b.size, reverse=True)
            del self._free[self.keep:]


def pack_features(pieces: list[np.ndarray], out: np.ndarray | None = None) -> list[np.ndarray]:
    """One pack's features (or samples) copied once into one writable ``[Σ T, ...]`` array, returned
    as views of it per utterance, which tile it (``model.nar.joined_view`` finds the whole again, so
    the model and the stand-in take the pack without copying it again; torch wants writable
    memory). ``out``: a flat float32 buffer of at least the pack's values to copy into
    (:class:`PackBuffers`); a new array when ``None``."""
    if not pieces:
        return []
    tail = pieces[0].shape[1:]
    rows = sum(p.shape[0] for p in pieces)
    width = int(np.prod(tail, dtype=np.int64)) if tail else 1
    if out is None:
        out = np.empty(rows * width, np.float32)
    whole = out[:rows * width].reshape((rows, *tail))
    np.concatenate(pieces, out=whole)
    views, at = [], 0
    for p in pieces:
        views.append(whole[at:at + p.shape[0]])
        at += p.shape[0]
    return views


def output_table(batch: pa.Table, columns: dict[str, list], constants: dict, schema: pa.Schema) -> pa.Table:
    """The output table of ``schema``: ``columns`` (per-row values), ``constants`` (one value for
    every row), the rest taken from ``batch`` where it has the column, null otherwise."""
    n = batch.num_rows
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type))
        elif field.name in constants:
            arrays.append(pa.array([constants[field.name]] * n, type=field.type))
        elif field.name in batch.column_names:
            column = batch.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
