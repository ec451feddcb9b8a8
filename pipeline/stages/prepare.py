"""The CPU stages as batch functions (``pyarrow.Table`` in, ``pyarrow.Table`` out).

``decode_batch``: index items → fetched bytes → 16 kHz waveform → log-mel features, one row per
item; a bad file becomes a row with ``error`` set.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from pipeline.stages.decode import (
    SAMPLE_RATE, BadAudio, DecodeSettings, decode, features_for, is_silent, one_line,
)
from pipeline.stages.channels import expand_channels
from pipeline.stages.fetch import fetch_audio
from pipeline.stages.passthrough import carry_columns
from pipeline.sinks.schema import decoded_schema, rows_to_table
from pipeline.stages.segment import plan_segments, segment_times
from pipeline.storage import Storage


def current_node_id() -> str | None:
    """The Ray node this code runs on (``None`` outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def decode_row(item: dict, data: bytes | None, fetch_error: str | None,
               settings: DecodeSettings, log_mel) -> dict:
    """One decoded row: features (with ``settings.features_on == "accelerator"``, the samples
    instead: :func:`samples_columns`), or ``silent``, or ``error`` with the reason.

    ``item`` may carry ``start_s``/``end_s`` (seconds of the file; null = its start/end): only that
    span is decoded, and ``duration_s`` is the span's decoded length. Inputs longer than
    ``max_segment_s`` are cut at quiet points; the features of the segments are stored end to end
    with their frame counts in ``segment_frames``. ``decode_seconds`` times the audio decoding,
    ``features_seconds`` only the log-mel front end (the leaderboard's RTFx excludes decoding).
    """
    row = {"id": item["id"], "source": item["source"], "reference": item.get("reference"),
           "error": item.get("error") or fetch_error, "duration_s": None, "features": None,
           "num_frames": 0, "silent": False, "decode_seconds": None, "features_seconds": None,
           "start_s": item.get("start_s"), "end_s": item.get("end_s"),
           "channel": item.get("channel")}
    if row["error"]:
        return row
    try:
        started = time.perf_counter()
        try:
            waveform = decode(data or b"", max_duration_s=settings.max_duration_s,
                              start_s=item.get("start_s"), end_s=item.get("end_s"),
                              channel=item.get("channel"))
        finally:
            row["decode_seconds"] = time.perf_counter() - started
        row["duration_s"] = waveform.size / SAMPLE_RATE
        if is_silent(waveform, settings.silence_dbfs):
            row["silent"] = True
            return row
        started = time.perf_counter()
        segments = plan_segments(waveform, settings.max_segment_s)
        if settings.features_on == "accelerator":
            row.update(samples_columns([waveform[start:end] for start, end in segments], settings, log_mel))
            row["segments"] = segment_times(segments, offset_s=row["start_s"] or 0.0)  # file time
            return row
        parts = [features_for(waveform[start:end], log_mel) for start, end in segments]
        features = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
        row["features_seconds"] = time.perf_counter() - started
        row["features"], row["num_frames"] = features.tobytes(), int(features.shape[0])
        row["segment_frames"] = [int(p.shape[0]) for p in parts]
        row["segments"] = segment_times(segments, offset_s=row["start_s"] or 0.0)  # file time
    except BadAudio as e:
        row["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - one bad file must not stop the job
        row["error"] = one_line(f"decode failed: {type(e).__name__}: {e}")
    return row


def samples_columns(parts: list[np.ndarray], settings: DecodeSettings, log_mel) -> dict:
    """``--features-on accelerator``: the decoded row's ``samples`` (the segments' 16 kHz float32
    samples end to end, as bytes) and ``segment_samples``, with the frame counts the actor's
    features will have (``num_feature_frames`` per segment under the run's profile, model-spec §9.1),
    so that packing sees the same frames as with features on the CPU. A segment ``log_mel`` would
    refuse (too short) raises the same :class:`BadAudio` here, so error rows do not depend on where
    the features are computed."""
    from model.features import min_samples, num_feature_frames

    shortest = min_samples(settings.numerics)
    for part in parts:
        if part.size < shortest:
            features_for(part, log_mel)   # raises the refusal log_mel gives, as BadAudio
    frames = [num_feature_frames(int(p.size), numerics=settings.numerics) for p in parts]
    samples = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    return {"samples": samples.tobytes(), "segment_samples": [int(p.size) for p in parts],
            "segment_frames": frames, "num_frames": int(sum(frames))}


def decode_batch(batch: pa.Table, *, storage: Storage, settings: DecodeSettings,
                 with_audio: bool, passthrough: tuple[str, ...] = ()) -> pa.Table:
    """Index items → decoded rows (``decoded_schema``), plus the ``passthrough`` columns of
    ``batch`` unchanged (``pipeline/stages/passthrough.py``)."""
    from functools import partial

    from model import log_mel

    log_mel = partial(log_mel, numerics=settings.numerics)
    items = batch.to_pylist()
    items, fetched = expand_channels(items, fetch_audio(items, storage))   # --channel all
    node = current_node_id()
    rows = []
    for item, (data, fetch_error) in zip(items, fetched):
        row = decode_row(item, data, fetch_error, settings, log_mel)
        row["decode_node"] = node
        if with_audio:
            row["audio"] = data
        rows.append(row)
    return carry_columns(rows_to_table(rows, decoded_schema(with_audio)), batch, passthrough)
