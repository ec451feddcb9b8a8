"""Decode cost of many spans of one long compressed file against one whole-file decode.

NeMo segment manifests cut long recordings into hundreds of ``offset``/``duration`` rows. MP3 does
not seek exactly, so each span is decoded from the start of the file; the decode worker's span
cache (``pipeline/stages/span_cache.py``) keeps the decoded frames so that the spans together cost
one pass. Goal: 200 spans of a 25-minute MP3 in at most 2x one whole-file decode.

    python -m bench.spans                       # 25 min, 200 spans
    python -m bench.spans --seconds 300 --spans 50
"""

from __future__ import annotations

import argparse
import io
import json
import time
from fractions import Fraction

import numpy as np


def synthetic_mp3(seconds: float, rate: int = 44_100, seed: int = 0) -> bytes:
    """A mono MP3 (LAME, 128 kb/s) of noise-modulated tones, ``seconds`` long."""
    import av

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
               + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 128_000
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in (*stream.encode(frame), *stream.encode(None)):
            out.mux(packet)
    return buf.getvalue()


def span_decode_cost(seconds: float = 1500.0, spans: int = 200, *, cached: bool = True) -> dict:
    """Seconds to decode one ``seconds``-long MP3 whole, and ``spans`` equal consecutive spans of
    it one after another as decode tasks do (``decode(start_s=, end_s=)``), and their ratio.
    ``cached=False`` clears the span cache before every span (the cost without it)."""
    from pipeline.stages import span_cache
    from pipeline.stages.decode import decode

    data = synthetic_mp3(seconds)
    span_cache.clear()
    started = time.perf_counter()
    whole = decode(data)
    whole_s = time.perf_counter() - started
    length = whole.size / 16_000
    step = length / spans
    started = time.perf_counter()
    samples = 0
    for i in range(spans):
        if not cached:
            span_cache.clear()
        samples += decode(data, start_s=i * step, end_s=min((i + 1) * step, length)).size
    spans_s = time.perf_counter() - started
    span_cache.clear()
    return {"audio_seconds": round(length, 3), "spans": spans, "cached": cached,
            "whole_file_decode_s": round(whole_s, 3), "spans_decode_s": round(spans_s, 3),
            "ratio": round(spans_s / whole_s, 3), "span_samples": samples,
            "whole_samples": int(whole.size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spans", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1500.0, help="MP3 length (default: 1500)")
    p.add_argument("--spans", type=int, default=200, help="spans decoded (default: 200)")
    p.add_argument("--uncached", action="store_true", help="also time the spans without the cache")
    args = p.parse_args(argv)
    results = [span_decode_cost(args.seconds, args.spans)]
    if args.uncached:
        results.append(span_decode_cost(args.seconds, args.spans, cached=False))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
