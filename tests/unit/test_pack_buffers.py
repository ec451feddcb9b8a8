"""The inference actor's host path without copies it does not need: rows read from every Arrow
chunk in place, packs copied once into reused buffers that the model and the stand-in take whole,
the stand-in's ids made per pack, and text decoded on the actor's own thread.

Each of these was measured by ``jobs.benchmark``'s actor ceiling (README, "Stand-in accelerator")."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from model import load_model, log_mel
from model.nar import joined_view
from pipeline.stages.inference import PackBuffers, pack_features, row_views
from pipeline.stages.standin import _edited, stand_in_ids, stand_in_pack_ids
from tests.conftest import TINY_AUDIO, TINY_MODEL

UIDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05"]


@pytest.fixture(scope="module")
def feats() -> list[np.ndarray]:
    return [np.ascontiguousarray(log_mel(sf.read(TINY_AUDIO / f"{u}.flac", dtype="float32")[0]), np.float32)
            for u in UIDS]


def _binary_column(arrays: list[np.ndarray | None], split_at: int) -> pa.ChunkedArray:
    values = [None if a is None else a.tobytes() for a in arrays]
    return pa.chunked_array([pa.array(values[:split_at], pa.binary()), pa.array(values[split_at:], pa.binary())])


def test_row_views_read_every_chunk_in_place(feats):
    column = _binary_column([feats[0], None, *feats[1:]], split_at=2)
    views = row_views(column, 160)
    assert len(views) == len(UIDS) + 1 and views[1].shape == (0, 160)
    for got, want in zip([views[0], *views[2:]], feats):
        np.testing.assert_array_equal(got, want)
    data = [np.frombuffer(c.buffers()[2], np.uint8) for c in column.chunks]
    assert np.shares_memory(views[0], data[0]) and np.shares_memory(views[3], data[1])   # no copy
    samples = row_views(pa.chunked_array([pa.array([np.arange(6, dtype=np.float32).tobytes()])]), 1)
    assert samples[0].shape == (6,) and samples[0][5] == 5.0
    with pytest.raises(ValueError, match="whole"):
        row_views(pa.chunked_array([pa.array([b"\0" * 644])]), 160)


def test_pack_buffers_are_reused_and_never_shared():
    pool = PackBuffers(keep=2, least=100)
    a, b = pool.take(50), pool.take(300)
    assert a.size == 100 and b.size == 300 and a.dtype == np.float32
    pool.give([a, b])
    assert pool.take(80) is a   # the smallest free one that holds the pack
    assert pool.take(80) is b
    assert pool.take(80) is not a
    pool.give([pool.take(10) for _ in range(4)])
    assert len(pool._free) == 2   # beyond ``keep`` free buffers are let go

    taken: list[np.ndarray] = []
    lock = threading.Lock()

    def grab() -> None:
        for _ in range(50):
            buffer = pool.take(100)
            with lock:
                assert all(buffer is not t for t in taken)   # never two holders at once
                taken.append(buffer)
            buffer[:] = 1.0
            with lock:
                taken.pop(next(k for k, t in enumerate(taken) if t is buffer))
            pool.give([buffer])

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken == []


def test_pack_views_tile_one_buffer_that_joined_view_finds(feats):
    out = np.full(sum(f.size for f in feats) + 1000, np.nan, np.float32)   # larger than the pack
    views = pack_features(feats, out)
    for v, f in zip(views, feats):
        np.testing.assert_array_equal(v, f)
    whole = joined_view(views)
    assert whole.shape == (sum(f.shape[0] for f in feats), 160) and np.shares_memory(whole, out)
    np.testing.assert_array_equal(whole, np.concatenate(feats))
    assert joined_view(pack_features(feats)) is not None   # a new array of its own
    # what does not tile one buffer is refused: separate arrays, a gap, read-only memory, float64
    assert joined_view(feats) is None
    assert joined_view([views[0], views[2]]) is None
    frozen = pack_features(feats)
    frozen[0].base.flags.writeable = False
    assert joined_view(frozen) is None
    assert joined_view([v.astype(np.float64) for v in views]) is None
    assert joined_view([]) is None
    raw = np.arange(8, dtype=np.float32)
    shifted = raw.view(np.uint8)[2:30].view(np.float32)   # float32 read 2 bytes into the buffer
    assert shifted.base is raw and joined_view([shifted]) is None
    np.testing.assert_array_equal(joined_view([raw[1:3], raw[3:6]]), raw[1:6])   # aligned, in order
    assert pack_features([], out) == []


@pytest.mark.parametrize("numerics", ["transformers", "hub"])
def test_the_model_gives_the_same_ids_from_one_pack_buffer(feats, numerics):
    model = load_model(TINY_MODEL, device="cpu", numerics=numerics)
    pool = PackBuffers(least=10)
    buffer = pool.take(sum(f.size for f in feats))
    packed = model.transcribe(pack_features(feats, buffer))
    separate = model.transcribe([f.copy() for f in feats])
    assert [r.token_ids for r in packed] == [r.token_ids for r in separate]
    assert [r.text for r in packed] == [r.text for r in separate]
    with pytest.raises(ValueError, match=r"\[T >= 1, 160\]"):
        model.transcribe(pack_features([feats[0][:, :80].copy()], buffer))


def test_stand_in_ids_per_pack_equal_the_per_utterance_rule():
    rng = np.random.default_rng(5)
    for _ in range(50):
        frames = rng.integers(1, 3000, rng.integers(1, 30)).tolist()
        vocab = int(rng.integers(2, 600))
        blank = int(rng.integers(0, vocab))
        drafts, finals = stand_in_pack_ids(frames, vocab, blank)
        assert drafts == [stand_in_ids(n, n + i, vocab, blank) for i, n in enumerate(frames)]
        assert finals == [_edited(d) for d in drafts]


def test_decode_batch_starts_no_threads():
    """The tokenizers library's own batch decode starts a thread pool on first use (one thread per
    core); the actor decodes on its own thread instead. A fresh interpreter counts the threads."""
    probe = ("import os\nfrom model.text import TextDecoder\n"
             f"d = TextDecoder.from_folder({str(TINY_MODEL)!r})\n"
             "before = len(os.listdir('/proc/self/task'))\n"
             "texts = d.decode_batch([[5, 6, 7, 8] * 10] * 64)\n"
             "assert texts == [d.decode([5, 6, 7, 8] * 10)] * 64 and texts[0]\n"
             "print(before, len(os.listdir('/proc/self/task')))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"})
    before, after = map(int, out.stdout.split())
    assert after == before
