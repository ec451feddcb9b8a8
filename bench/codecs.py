"""CPU cost of decoding + features per input codec, so users can size CPUs per accelerator.

Each clip is encoded once (FLAC with soundfile; MP3 and Opus with PyAV, FFmpeg inside its wheel),
then decoded and featurised by the pipeline's own ``decode_row`` on one thread. CPU time (not wall
time) is measured, so other load on the machine changes the figure little.
"""

from __future__ import annotations

import io
import time

import av
import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
CODECS = ("flac", "mp3", "opus")


def _encode_av(wave: np.ndarray, container: str, codec: str, rate: int, bit_rate: int) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(wave[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def encode(wave: np.ndarray, codec: str) -> bytes:
    """16 kHz mono float32 -> file bytes: ``flac`` (16-bit), ``mp3`` (64 kb/s), ``opus`` (Ogg, 32 kb/s)."""
    if codec == "flac":
        buf = io.BytesIO()
        sf.write(buf, wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    if codec == "mp3":
        return _encode_av(wave, "mp3", "libmp3lame", SAMPLE_RATE, 64_000)
    if codec == "opus":
        return _encode_av(wave, "ogg", "libopus", 48000, 32_000)
    raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")


def decode_cost(waves: list[np.ndarray], codec: str) -> dict:
    """Decode + features of ``waves`` encoded as ``codec``, on one thread.

    Returns ``cores_per_1000x``: CPU cores needed to decode and featurise 1,000 s of audio per wall
    second (= 1000 × CPU seconds ÷ audio seconds), and the CPU and audio seconds it comes from;
    or ``cores_per_1000x: None`` and ``error`` when the pipeline's decoder could not read a file.
    """
    import torch

    from model import log_mel
    from pipeline.stages.decode import DecodeSettings
    from pipeline.stages.prepare import decode_row

    settings = DecodeSettings(max_duration_s=3600.0, max_segment_s=40.0, silence_dbfs=-60.0)
    files = [encode(w, codec) for w in waves]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        decode_row({"id": "warm", "source": "warm"}, files[0], None, settings, log_mel)
        start = time.process_time()
        rows = [decode_row({"id": str(i), "source": str(i)}, data, None, settings, log_mel)
                for i, data in enumerate(files)]
        cpu = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    failed = [r["error"] for r in rows if r["error"]]
    if failed:  # e.g. a decoder without this codec: reported, not fatal for the benchmark
        return {"cores_per_1000x": None, "error": f"{len(failed)} of {len(rows)} failed: {failed[0]}"}
    audio = sum(r["duration_s"] for r in rows)
    return {"cores_per_1000x": 1000.0 * cpu / audio, "cpu_seconds": cpu, "audio_seconds": audio,
            "bytes": sum(len(f) for f in files)}


def decode_costs(waves: list[np.ndarray]) -> dict:
    """``decode_cost`` for every codec in ``CODECS``, keyed by codec."""
    return {codec: decode_cost(waves, codec) for codec in CODECS}
