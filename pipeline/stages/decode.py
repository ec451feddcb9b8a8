"""Decoding compressed audio to 16 kHz mono float32 and checking it, as pure functions.

A file that cannot be used raises :class:`BadAudio` with the reason that ends up in the row's
``error`` column. Durations are checked from the header before anything is decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000


# Non-finite samples (NaN or ±inf, which a float WAV can hold) would make every log-mel frame NaN.
# They are an error, not zeroed: the file is broken, and a transcript of a patched signal would look valid.
NON_FINITE_ERROR = ("non-finite samples (NaN or inf) in the decoded audio; the file is corrupt: "
                    "re-encode it from a clean source")


class BadAudio(Exception):
    """The input cannot be transcribed; ``str(exc)`` is the reason recorded on its row."""


@dataclass(frozen=True)
class DecodeSettings:
    max_duration_s: float = 3600.0
    max_segment_s: float = 40.0
    silence_dbfs: float = -60.0


def header_duration(data: bytes) -> float:
    """Seconds of audio according to the file header (nothing decoded)."""
    if not data:
        raise BadAudio("empty file (0 bytes)")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise BadAudio(f"undecodable audio: {e}") from e
    if info.samplerate <= 0:
        raise BadAudio(f"undecodable audio: sample rate {info.samplerate}")
    return info.frames / info.samplerate


def check_duration(seconds: float, settings: DecodeSettings) -> None:
    if seconds <= 0:
        raise BadAudio("empty audio (0 samples)")
    if seconds > settings.max_duration_s:
        raise BadAudio(f"too long: {seconds:.1f} s > --max-duration-seconds "
                       f"{settings.max_duration_s:g}")


def decode(data: bytes) -> np.ndarray:
    """Compressed bytes → 16 kHz mono float32 (downmixed by averaging, resampled with soxr)."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            expected, rate = f.frames, f.samplerate
            samples = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise BadAudio(f"undecodable audio: {e}") from e
    if len(samples) < expected:
        raise BadAudio(f"truncated audio: decoded {len(samples)} of {expected} samples")
    if not np.isfinite(samples).all():
        raise BadAudio(NON_FINITE_ERROR)
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32, copy=False)
    if mono.size == 0:
        raise BadAudio("empty audio (0 samples)")
    return np.ascontiguousarray(mono, dtype=np.float32)


def level_dbfs(waveform: np.ndarray) -> float:
    """RMS level of the whole signal in dB relative to full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(waveform, dtype=np.float64)))
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def is_silent(waveform: np.ndarray, silence_dbfs: float) -> bool:
    return level_dbfs(waveform) < silence_dbfs


def features_for(waveform: np.ndarray, log_mel) -> np.ndarray:
    """``log_mel`` of one utterance; inputs it refuses (under one 25 ms window) become :class:`BadAudio`."""
    try:
        return log_mel(waveform)
    except ValueError as e:
        raise BadAudio(f"too short or invalid for features: {e}") from e
