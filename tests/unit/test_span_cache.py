"""Spans of one MP3 decoded through the span cache: the same samples, to the bit, as each span
decoded on its own from the start of the file, and the file decoded once (no timing here: the
cost ratio is measured by ``python -m bench.spans``)."""

from __future__ import annotations

import numpy as np

from bench.spans import synthetic_mp3
from pipeline.stages import span_cache
from pipeline.stages.decode import decode


def test_spans_from_the_cache_equal_spans_decoded_alone_and_decode_the_file_once(monkeypatch):
    data = synthetic_mp3(6.0)
    spans = [(0.5, 1.25), (1.25, 2.0), (3.0, 4.5), (1.0, 1.5), (4.5, None)]
    alone = []
    for start, end in spans:
        span_cache.clear()
        alone.append(decode(data, start_s=start, end_s=end))
    span_cache.clear()
    pulled = []
    real_next = span_cache._File.extend_to

    def counting(self, last, budget):
        before = self.total
        real_next(self, last, budget)
        pulled.append(self.total - before)

    monkeypatch.setattr(span_cache._File, "extend_to", counting)
    together = [decode(data, start_s=start, end_s=end) for start, end in spans]
    for a, b in zip(alone, together):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    (entry,) = span_cache._FILES.values()
    # every frame of the file was decoded exactly once over the five spans
    assert sum(pulled) == entry.total and entry.done
    assert pulled[3] == 0                     # an earlier span: served from the kept frames
    span_cache.clear()


def test_a_file_too_big_for_the_cache_is_decoded_the_plain_way(monkeypatch):
    data = synthetic_mp3(3.0)
    span_cache.clear()
    expected = decode(data, start_s=1.0, end_s=2.0)
    span_cache.clear()
    monkeypatch.setattr(span_cache, "CACHE_BYTES", 1000)
    assert np.array_equal(decode(data, start_s=1.0, end_s=2.0), expected)
    assert not span_cache._FILES
