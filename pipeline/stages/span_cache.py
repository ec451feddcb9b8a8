"""Many spans of one compressed file, decoded in one pass (NeMo segment manifests of long MP3s).

Where FFmpeg cannot seek exactly (MP3 and ADTS seek by a bitrate guess; webm stamps in 1 ms), a
span is decoded from the start of the file and its samples counted, which is exact but costs the
whole prefix each time: 200 segments of a 25-minute MP3 decoded that way cost ~100 whole-file
decodes. Here a decode worker keeps the decoder of the last file(s) it read open, with the native-
rate frames decoded so far: a later span of the same file (same bytes, same channel) takes its
frames from what is kept and decodes further only past its end. The frames handed out are the
very frames (and slices) the uncached path produces, so the result is the same to the bit, and
the cost is one decode of the file up to its last span.

Memory: at most :data:`CACHE_BYTES` of kept frames in all; a file that would need more is decoded
the uncached way (:class:`TooBig`). Spans arriving out of order are served from the kept frames
too (nothing is dropped until the file leaves the cache).
"""

from __future__ import annotations

import bisect
import hashlib
import io
from collections import OrderedDict
from typing import Iterator

import numpy as np

CACHE_BYTES = 768 << 20        # native-rate float32 frames kept per decode worker
CACHE_FILES = 2                # files kept (spans of two files may interleave in a block)


class TooBig(Exception):
    """The file's frames do not fit in :data:`CACHE_BYTES`; decode the span without the cache."""


class _File:
    """An open decoder over one file's bytes and the mono (or one-channel) frames it gave."""

    def __init__(self, data: bytes, channel: int | None, blocks_of) -> None:
        import av

        self.container = av.open(io.BytesIO(data), metadata_errors="ignore")
        stream = self.container.streams.audio[0]
        self.rate = stream.codec_context.sample_rate
        self.frames = blocks_of(self.container, stream, 0, None, False, channel)
        self.blocks: list[np.ndarray] = []
        self.starts: list[int] = []         # first frame of each block
        self.total = 0
        self.done = False

    def extend_to(self, last: int | None, budget: int) -> None:
        while not self.done and (last is None or self.total < last):
            try:
                block = next(self.frames)
            except StopIteration:
                self.close()
                return
            if (self.total + block.size) * 4 > budget:
                raise TooBig
            self.starts.append(self.total)
            self.blocks.append(block)
            self.total += block.size

    def span(self, first: int, last: int | None) -> Iterator[np.ndarray]:
        """The kept blocks cut to ``[first, last)``, as ``decode._ffmpeg_blocks`` cuts them."""
        index = max(bisect.bisect_right(self.starts, first) - 1, 0)
        for start, block in zip(self.starts[index:], self.blocks[index:]):
            if last is not None and start >= last:
                return
            lo, hi = max(first - start, 0), block.size if last is None else min(block.size, last - start)
            if hi > lo:
                yield block[lo:hi]

    def close(self) -> None:
        self.done = True
        self.container.close()

    @property
    def bytes(self) -> int:
        return self.total * 4


_FILES: OrderedDict[tuple, _File] = OrderedDict()
SAMPLE_BYTES = 64 << 10        # fingerprint: head and tail, and 64 slices of 1 KiB between
SLICES = 64


def fingerprint(data: bytes) -> tuple[int, bytes]:
    """(size, digest of the head, the tail and 64 slices spread over the rest) of a file's bytes:
    two different files that agree on all of them (same size, same bytes at every sampled place)
    do not occur in practice, and the cost stays ~0.1 ms however long the file."""
    view = memoryview(data)
    h = hashlib.blake2b(digest_size=16)
    if len(data) <= 4 * SAMPLE_BYTES:
        h.update(view)
    else:
        h.update(view[:SAMPLE_BYTES])
        h.update(view[-SAMPLE_BYTES:])
        step = (len(data) - 2 * SAMPLE_BYTES) // SLICES
        for i in range(SLICES):
            at = SAMPLE_BYTES + i * step
            h.update(view[at:at + 1024])
    return len(data), h.digest()


def span_blocks(data: bytes, first: int, last: int | None, channel: int | None,
                blocks_of) -> tuple[int, list[np.ndarray]]:
    """(native rate, blocks of frames ``[first, last)``) of the file ``data``, decoding only what
    the kept frames of earlier spans of that file do not cover. ``blocks_of`` is
    ``decode._ffmpeg_blocks``. Raises :class:`TooBig`, and FFmpeg's errors (the file is dropped)."""
    key = (fingerprint(data), channel)
    entry = _FILES.pop(key, None)
    try:
        if entry is None:
            entry = _File(data, channel, blocks_of)
        others = sum(f.bytes for f in _FILES.values())
        entry.extend_to(last, CACHE_BYTES - others)
    except BaseException:
        if entry is not None and not entry.done:
            entry.close()
        raise
    _FILES[key] = entry
    while len(_FILES) > CACHE_FILES:
        _, old = _FILES.popitem(last=False)
        if not old.done:
            old.close()
    return entry.rate, list(entry.span(first, last))


def kept_span(data: bytes, channel: int | None, frames_of, blocks_of
              ) -> tuple[int, list[np.ndarray]] | None:
    """``span_blocks`` for a file already kept (``None`` otherwise), without probing the file
    again: ``frames_of(rate)`` gives the span's ``(first, last)`` frames at the file's rate."""
    entry = _FILES.get((fingerprint(data), channel))
    if entry is None:
        return None
    first, last = frames_of(entry.rate)
    return span_blocks(data, first, last, channel, blocks_of)


def clear() -> None:
    """Forget every kept file (tests; a worker frees its memory)."""
    while _FILES:
        _, old = _FILES.popitem()
        if not old.done:
            old.close()
