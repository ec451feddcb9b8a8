"""Real codec files for the decoding tests, encoded in-process with PyAV (FFmpeg in its wheel)
and soundfile: CI has no ffmpeg/sox binaries.

Each helper returns the file's bytes; the signal is given as float32 ``[samples]`` or
``[samples, channels]`` at ``rate`` Hz.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import numpy as np
import soundfile as sf
import soxr

from tests.conftest import TINY_AUDIO


def speech(seconds: float, rate: int = 16_000) -> np.ndarray:
    """``seconds`` of speech-like signal: the tiny fixtures' clips end to end, repeated, at ``rate``."""
    clips = [sf.read(path, dtype="float32")[0] for path in sorted(TINY_AUDIO.glob("*.flac"))]
    joined = np.concatenate(clips)
    wanted = int(round(seconds * 16_000))
    signal = np.resize(joined, wanted)
    if rate != 16_000:
        signal = soxr.resample(signal, 16_000, rate).astype(np.float32)
    return signal.astype(np.float32)


def encode(samples: np.ndarray, rate: int, container: str, codec: str, *,
           container_options: dict | None = None, codec_options: dict | None = None,
           vbr_quality: int | None = None) -> bytes:
    """``samples`` encoded with FFmpeg's ``codec`` in ``container`` (a muxer name: mp4, webm, ogg, mp3, ...)."""
    planar = np.ascontiguousarray(np.atleast_2d(samples.T if samples.ndim == 2 else samples),
                                  dtype=np.float32)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=container, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=codec_options or {})
        if vbr_quality is not None:                      # LAME VBR: -V quality
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = vbr_quality * 118   # FF_QP2LAMBDA
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)   # record priming
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def soundfile_bytes(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def id3v2_with_cover(image_bytes: int) -> bytes:
    """An ID3v2.3 tag holding a title and an APIC (attached picture) frame of ``image_bytes`` bytes.

    Layout per the ID3v2.3 spec: "ID3", version 3.0, flags 0, a 28-bit synchsafe size; frames are
    a 4-byte id, a plain 32-bit size and 2 flag bytes.
    """
    def frame(frame_id: bytes, body: bytes) -> bytes:
        return frame_id + struct.pack(">I", len(body)) + b"\x00\x00" + body

    jpeg = b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(7).integers(0, 256, image_bytes - 6,
                                                                         dtype=np.uint8)) + b"\xff\xd9"
    apic = b"\x00" + b"image/jpeg\x00" + b"\x03" + b"cover\x00" + jpeg
    frames = frame(b"TIT2", b"\x00A test track") + frame(b"APIC", apic)
    size = len(frames)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + synchsafe + frames


def sphere_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """NIST SPHERE, 16-bit little-endian PCM, with the 1024-byte header as NIST writes it."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    fields = ["NIST_1A", "   1024", "sample_count -i %d" % pcm.size, "sample_rate -i %d" % rate,
              "channel_count -i 1", "sample_n_bytes -i 2", "sample_byte_format -s2 01",
              "sample_coding -s3 pcm", "end_head"]
    header = ("\n".join(fields) + "\n").encode("ascii")
    return header.ljust(1024, b" ") + pcm.tobytes()
