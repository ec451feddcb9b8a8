"""--features-on accelerator: the decode tasks ship 16 kHz samples, the inference actor computes each
pack's features in one batched call, and every output column is the same as with features from the
decode tasks, under both numerics profiles (pure: decode_batch and the Transcriber called directly,
no Ray; the job runs this path in tests/pipeline/test_reference_oracle.py)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from model import log_mel
from model.features import num_feature_frames
from pipeline.model_ref import ModelSpec
from pipeline.sources.items import file_item
from pipeline.stages.decode import DecodeSettings
from pipeline.stages.inference import Transcriber, row_views
from pipeline.stages.prepare import decode_batch
from pipeline.storage import Storage
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_row_matches_reference

ORIGINAL_LAYOUT = REPO / "tests" / "fixtures" / "granite-nar-tiny-original"
UIDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05", "a06_long"]
# Columns that time or place the work (and the features' timing moves to the actor): all others equal.
TIMING = {"features_seconds", "infer_seconds", "infer_warmup_seconds", "decode_seconds", "infer_actor",
          "infer_actor_start", "infer_batch_end"}


def wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16_000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> pa.Table:
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    for uid in UIDS:
        (folder / f"{uid}.flac").write_bytes((TINY_AUDIO / f"{uid}.flac").read_bytes())
    (folder / "n319.wav").write_bytes(wav_bytes(rng.standard_normal(319).astype(np.float32) * 0.1))
    (folder / "quiet.wav").write_bytes(wav_bytes(np.zeros(8000, np.float32)))
    names = [f"{u}.flac" for u in UIDS] + ["n319.wav", "quiet.wav"]
    return pa.Table.from_pylist([file_item(n.split(".")[0], str(folder / n)) for n in names])


def decoded(items: pa.Table, numerics: str, features_on: str) -> pa.Table:
    # 2.5 s segments: a04, a05 and a06_long are cut into several, which the actor joins again
    settings = DecodeSettings(numerics=numerics, features_on=features_on, max_segment_s=2.5)
    return decode_batch(items, storage=Storage.from_env(), settings=settings, with_audio=False)


@pytest.mark.parametrize("numerics, checkpoint", [("transformers", TINY_MODEL), ("hub", ORIGINAL_LAYOUT)])
def test_samples_shipped_give_the_same_rows(items, numerics, checkpoint):
    on_cpu, shipped = decoded(items, numerics, "cpu"), decoded(items, numerics, "accelerator")
    rows = {r["id"]: r for r in shipped.to_pylist()}
    cpu_rows = {r["id"]: r for r in on_cpu.to_pylist()}
    shipped_samples = row_views(shipped.column("samples"), 1)
    for k, uid in enumerate(shipped.column("id").to_pylist()):
        row, ref = rows[uid], cpu_rows[uid]
        # the same frames (packing sees the same lengths), the samples instead of the features
        assert (row["num_frames"], row["segment_frames"], row["segments"], row["error"], row["silent"]) == \
            (ref["num_frames"], ref["segment_frames"], ref["segments"], ref["error"], ref["silent"]), uid
        assert row["features"] is None and row["features_seconds"] is None
        if uid in UIDS:
            wave = sf.read(TINY_AUDIO / f"{uid}.flac", dtype="float32")[0]
            np.testing.assert_array_equal(shipped_samples[k], wave)
            assert sum(row["segment_samples"]) == wave.size
            assert row["segment_frames"] == [num_feature_frames(n, numerics=numerics)
                                             for n in row["segment_samples"]]
    assert len(rows["a06_long"]["segment_frames"]) >= 3 and rows["quiet"]["silent"]
    assert rows["n319"]["error"] == cpu_rows["n319"]["error"] and \
        rows["n319"]["error"].startswith("too short or invalid for features: audio too short: 319 samples")

    spec = ModelSpec(str(checkpoint), device="cpu", numerics=numerics)

    def actor(features_on: str) -> Transcriber:
        return Transcriber(spec, editing_steps=1, max_frames_per_pack=150, num_threads=1,
                           with_audio=False, timestamps="word", features_on=features_on)

    want = actor("cpu")(on_cpu).to_pylist()
    got = actor("accelerator")(shipped).to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in want] == UIDS + ["n319", "quiet"]
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k not in TIMING} == \
            {k: v for k, v in w.items() if k not in TIMING}, g["id"]
        # the features' time is now the actor's, per row; the forward's stays apart
        assert (g["features_seconds"] is not None) == (g["id"] in UIDS)
        if g["id"] in UIDS:
            assert g["features_seconds"] > 0 and g["infer_seconds"] > 0
    # unsegmented rows are exactly the reference's results for that utterance alone
    for row in got[:3]:
        assert_row_matches_reference(row, row["id"], numerics=numerics)
    assert any(r["words"] for r in got)   # word times ran on the actor's features too (and equal)


def test_the_actor_computes_log_mel_per_pack():
    """One batched call per pack gives each utterance exactly log_mel's frames (within 1e-5)."""
    spec = ModelSpec(str(TINY_MODEL), device="cpu")
    actor = Transcriber(spec, editing_steps=1, max_frames_per_pack=200, num_threads=1, with_audio=False,
                        features_on="accelerator")
    waves = [sf.read(TINY_AUDIO / f"{u}.flac", dtype="float32")[0] for u in UIDS]
    feats, refused, seconds = actor._features(waves)
    assert refused == {} and seconds > 0 and actor.parts["features"] > 0
    for w, f in zip(waves, feats):
        np.testing.assert_allclose(f.numpy(), log_mel(w), atol=1e-5, rtol=0)
    # a piece the batched call refuses is pinned on itself; the others keep their features
    feats, refused, _ = actor._features([waves[1], np.zeros(100, np.float32), waves[2]])
    assert list(refused) == [1] and "audio too short: 100 samples" in refused[1] and len(feats) == 2
    np.testing.assert_allclose(feats[1].numpy(), log_mel(waves[2]), atol=1e-5, rtol=0)


def test_decode_memory_request_counts_the_samples_shipped():
    from pipeline.stages.decode import decode_task_memory_bytes

    cpu = decode_task_memory_bytes(DecodeSettings(max_duration_s=100.0), 4)
    shipped = decode_task_memory_bytes(DecodeSettings(max_duration_s=100.0, features_on="accelerator"), 4)
    # three finished rows of 100 s held twice: samples 64,000 B/s instead of features 32,000 B/s
    assert shipped - cpu == 3 * 100 * 2 * (64_000 - 32_000)


def test_rows_whose_features_failed_get_no_share_of_the_forward():
    """A pack of three whose middle piece the batched features call refuses: the forward (and
    warm-up) seconds are shared over the two rows that were in it, by their frames; the refused
    row gets 0 and its error text."""
    spec = ModelSpec(str(TINY_MODEL), device="cpu")
    actor = Transcriber(spec, editing_steps=1, max_frames_per_pack=100_000, num_threads=1,
                        with_audio=False, features_on="accelerator")
    waves = [sf.read(TINY_AUDIO / f"{u}.flac", dtype="float32")[0] for u in ("a02", "a04")]
    pieces = [waves[0], np.zeros(100, np.float32), waves[1]]
    frames = [num_feature_frames(len(waves[0])), 50, num_feature_frames(len(waves[1]))]
    results, seconds, warm, featured = actor._transcribe(pieces, frames)
    assert isinstance(results[1], str) and "audio too short: 100 samples" in results[1]
    assert not isinstance(results[0], str) and not isinstance(results[2], str)
    assert seconds[1] == 0.0 and warm[1] == 0.0
    assert seconds[0] > 0 and seconds[0] / seconds[2] == pytest.approx(frames[0] / frames[2])
    assert actor.warm_packs_left >= 0 and warm[2] > 0       # the first pack warms the model up
    assert warm[0] / warm[2] == pytest.approx(frames[0] / frames[2])
    assert all(f > 0 for f in featured)     # the features call did hold all three
