"""A stand-in accelerator for the benchmark (``jobs.benchmark --simulate-rtfx R`` / ``--null-model``).

It takes the place of ``NarModel.transcribe`` inside the inference actor and does everything the
model's call does on the host except the forward: the pack's features become one torch tensor on
the model's device (pinned and copied without blocking on CUDA), then the actor is held for exactly
``audio seconds of the pack / R`` (``R = inf``: not at all), as a GPU computing at ``R`` times real
time would hold it, and the results are well formed: draft and final ids of a plausible length
(``TOKENS_PER_SECOND`` per second of audio, the rate of real speech in BPE tokens), their text from
the checkpoint's tokenizer, a confidence. So every later stage (scoring, writing) does its real
work on them.

Audio seconds are the pack's feature frames × 20 ms (one stacked frame per 20 ms, model-spec §2).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from model.nar import Transcription, joined_view

FRAME_SECONDS = 0.02
TOKENS_PER_SECOND = 3.5          # BPE tokens per second of real speech (bench.corpus.calibrate_drafts)
STAND_IN_CONFIDENCE = 0.9


def hold_seconds(frames: int, rtfx: float) -> float:
    """Seconds a ``rtfx``-times-real-time accelerator spends on ``frames`` stacked feature frames
    (``frames × 0.02 / rtfx``; 0 for ``rtfx = inf``). Raises ``ValueError`` unless ``rtfx > 0``."""
    if not rtfx > 0:
        raise ValueError(f"the simulated RTFx must be > 0 (inf: no wait), got {rtfx}")
    return 0.0 if math.isinf(rtfx) else frames * FRAME_SECONDS / rtfx


def hold(seconds: float, *, clock: Callable[[], float] = time.perf_counter,
         sleep: Callable[[float], None] = time.sleep) -> float:
    """Hold the calling thread for ``seconds`` (at least; ``sleep`` may overshoot by the
    scheduler's granularity) and return the seconds actually held, by ``clock``. The GIL is
    released while it sleeps, as it is while a GPU computes, so the actor's other threads run."""
    start = clock()
    deadline = start + seconds
    while (left := deadline - clock()) > 0:
        sleep(left)
    return clock() - start


def stand_in_ids(frames: int, salt: int, vocab: int, blank: int) -> list[int]:
    """Deterministic ids of a plausible length for ``frames`` of audio: ``TOKENS_PER_SECOND`` per
    second (at least one), in ``[0, vocab)``, never ``blank``, spread over the vocabulary by ``salt``.
    Computed in bulk (numpy): the stand-in's own cost must not count as the pipeline's."""
    n = max(1, round(frames * FRAME_SECONDS * TOKENS_PER_SECOND))
    ids = (salt + 7919 * np.arange(n, dtype=np.int64)) % max(1, vocab - 1)
    ids += ids >= blank
    return ids.tolist()


def stand_in_pack_ids(frames: list[int], vocab: int, blank: int) -> tuple[list[list[int]], list[list[int]]]:
    """Draft and final ids of a whole pack at once: for utterance ``i`` of ``frames[i]`` frames,
    ``stand_in_ids(frames[i], frames[i] + i, vocab, blank)`` and that draft with every fifth id
    replaced by its successor (:func:`_edited`), as an editing pass changes a draft. One numpy
    pass over the pack's ids: on a GPU the ids come from the device, so making them must cost
    the host next to nothing."""
    f = np.asarray(frames, np.int64)
    counts = np.maximum(1, np.round(f * FRAME_SECONDS * TOKENS_PER_SECOND).astype(np.int64))
    starts = np.concatenate([[0], np.cumsum(counts)])
    owner = np.repeat(np.arange(f.size), counts)
    k = np.arange(starts[-1]) - starts[owner]
    ids = (f[owner] + owner + 7919 * k) % max(1, vocab - 1)
    ids += ids >= blank
    successor = np.where(k + 1 < counts[owner], np.arange(ids.size) + 1, starts[owner])
    edited = np.where(k % 5 == 4, ids[successor], ids)
    bounds = starts.tolist()
    flat_d, flat_f = ids.tolist(), edited.tolist()
    return ([flat_d[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
            [flat_f[a:b] for a, b in zip(bounds[:-1], bounds[1:])])


def _edited(ids: list[int]) -> list[int]:
    """``ids`` with every fifth one replaced by its successor, as an editing pass changes a draft."""
    out = list(ids)
    out[4::5] = [ids[(k + 1) % len(ids)] for k in range(4, len(ids), 5)]
    return out


class StandInAccelerator:
    """``transcribe(features, editing_steps)`` as ``NarModel.transcribe`` returns it, without the
    forward. ``model`` is the loaded ``NarModel`` (its device, vocabulary and tokenizer are used; its
    weights never run). ``held_seconds`` of the last call is what the actor counts as forward time."""

    def __init__(self, model, rtfx: float, *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep):
        hold_seconds(1, rtfx)  # refuses rtfx <= 0
        self.model, self.rtfx = model, float(rtfx)
        self.name = getattr(model, "name", "")
        self._clock, self._sleep = clock, sleep
        cfg = model.config
        self.vocab, self.blank = cfg.text.vocab_size, cfg.blank_token_id

    @property
    def device(self):
        return self.model.device

    def to_device(self, features: list[np.ndarray]):
        """The pack's features as one float32 ``[Σ T, 160]`` tensor on the model's device (the copy
        the model's ``encode`` makes); pinned host memory and a non-blocking copy on CUDA. Tensors
        (features computed on the actor's device) are concatenated where they are."""
        import torch

        if isinstance(features[0], torch.Tensor):   # --features-on accelerator: already there
            return torch.cat(features).to(self.model.device, torch.float32)
        whole = joined_view(features)
        if whole is not None:
            flat = torch.from_numpy(whole)   # the pack's one buffer (inference.pack_features): no copy
        else:
            flat = torch.from_numpy(np.ascontiguousarray(np.concatenate(features), dtype=np.float32))
        device = self.model.device
        if device.type == "cuda":
            return flat.pin_memory().to(device, non_blocking=True)   # a pinned pack buffer: no copy
        return flat

    def transcribe_timed(self, features: list[np.ndarray], editing_steps: int = 1, *,
                         parts: dict | None = None,
                         clock: Callable[[], float] = time.perf_counter) -> tuple[list[Transcription], float]:
        """Results in input order and the seconds the stand-in held the actor. ``parts`` (when
        given) gets the seconds of ``to_device`` and ``results`` by ``clock`` (the actor's: wall or
        CPU time) and ``held`` added."""
        if not features:
            return [], 0.0
        frames = [int(f.shape[0]) for f in features]
        t0 = clock()
        on_device = self.to_device(features)
        t1 = clock()
        held = hold(hold_seconds(sum(frames), self.rtfx), clock=self._clock, sleep=self._sleep)
        if on_device.device.type == "cuda":
            import torch
            torch.cuda.current_stream(on_device.device).synchronize()
        t2 = clock()
        drafts, finals = stand_in_pack_ids(frames, self.vocab, self.blank)
        decode = getattr(self.model, "_decode", None)
        texts = decode(finals) if decode else [""] * len(finals)
        draft_texts = decode(drafts) if decode else [""] * len(drafts)
        results = [Transcription(token_ids=f, draft_ids=d, text=t, draft_text=dt,
                                 confidence=STAND_IN_CONFIDENCE, positions=2 * len(d) + 1)
                   for f, d, t, dt in zip(finals, drafts, texts, draft_texts)]
        if parts is not None:
            parts["to_device"] += t1 - t0
            parts["held"] += held
            parts["results"] += clock() - t2
        return results, held

    def transcribe(self, features: list[np.ndarray], editing_steps: int = 1, **_) -> list[Transcription]:
        return self.transcribe_timed(features, editing_steps)[0]
