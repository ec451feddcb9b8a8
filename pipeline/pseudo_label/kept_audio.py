"""The audio of a kept label as a FLAC file: names that survive every layout, lossless where possible.

Every kept row's audio is written once, as 16 kHz mono FLAC of exactly the samples the model
labelled (the pipeline's own decoder; a span ``[start_s, end_s)`` of a longer file is cut out, and
a row of one channel, ``channel``, holds that channel, not the mix).
The same bytes go into the HF Parquet ``audio`` struct, the NeMo manifest's files and the
WebDataset shards, so all three layouts hold the same audio and give the same transcript again.

Sample format: PCM_16 when the decoded samples are exact 16-bit values (16-bit sources at 16 kHz:
bit-exact), else PCM_24 (resampled or lossy sources: within 2**-24 of what the model heard).
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import urllib.parse

import numpy as np
import soundfile as sf

from pipeline.stages.decode import SAMPLE_RATE, decode

KEPT_AUDIO_DIR = "kept_audio"
SHARD_HEX_DIGITS = 3          # kept_audio/000 … kept_audio/fff: 4096 folders
MAX_KEY_CHARS = 160           # file-name limits (255 bytes) with room for the extension
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
INT16_SCALE = 32768.0
INT24_SCALE = float(2 ** 23)


def sample_key(uid: str) -> str:
    """A file-name and WebDataset key for ``uid``: characters other than ``[A-Za-z0-9_-]`` are
    percent-encoded (UTF-8), so the key has no ``/`` and no ``.`` and WebDataset's key rule (the
    member name up to the first dot of its basename) gives it back whole; :func:`id_from_key`
    reverses it. Ids longer than ``MAX_KEY_CHARS`` once encoded end in a hash instead (the id
    itself travels in the sample's ``.json`` member)."""
    key = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in uid)
    if len(key) > MAX_KEY_CHARS:
        key = f"{key[:MAX_KEY_CHARS - 41]}~{hashlib.sha1(uid.encode('utf-8')).hexdigest()}"
    return key


def id_from_key(key: str) -> str:
    """The id behind a :func:`sample_key` (not for the hashed long form)."""
    return urllib.parse.unquote(key, encoding="utf-8", errors="strict")


def kept_audio_relpath(uid: str) -> str:
    """``kept_audio/<3 hex digits of sha1(id)>/<sample_key>.flac``, relative to the output root."""
    shard = hashlib.sha1(uid.encode("utf-8")).hexdigest()[:SHARD_HEX_DIGITS]
    return posixpath.join(KEPT_AUDIO_DIR, shard, sample_key(uid) + ".flac")


def cut_span(waveform: np.ndarray, start_s: float | None, end_s: float | None) -> np.ndarray:
    """Samples ``[start_s, end_s)`` of a 16 kHz waveform (``None``: from the start / to the end)."""
    start = 0 if start_s is None else int(round(start_s * SAMPLE_RATE))
    end = waveform.size if end_s is None else int(round(end_s * SAMPLE_RATE))
    return waveform[max(0, start):max(0, min(end, waveform.size))]


def flac_bytes(waveform: np.ndarray) -> bytes:
    """16 kHz mono float32 ``[N]`` → FLAC bytes (PCM_16 if lossless in 16 bits, else PCM_24)."""
    scaled = waveform.astype(np.float64) * INT16_SCALE
    exact16 = np.array_equal(scaled, np.round(scaled)) and scaled.min(initial=0) >= -32768 \
        and scaled.max(initial=0) <= 32767
    buf = io.BytesIO()
    if exact16:
        sf.write(buf, scaled.astype(np.int16), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    else:
        k = np.clip(np.round(waveform.astype(np.float64) * INT24_SCALE), -INT24_SCALE, INT24_SCALE - 1)
        sf.write(buf, k.astype(np.int32) << 8, SAMPLE_RATE, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


def export_flac(data: bytes, start_s: float | None = None, end_s: float | None = None,
                channel: int | None = None) -> tuple[bytes, float]:
    """Compressed audio bytes (any format the pipeline decodes) → (FLAC bytes, seconds): the
    span ``[start_s, end_s)`` of channel ``channel`` (0-based; ``None``: the mean of the
    channels), as the row was transcribed.

    Raises :class:`~pipeline.stages.decode.BadAudio` when the bytes do not decode.
    """
    waveform = cut_span(decode(data, channel=channel), start_s, end_s)
    return flac_bytes(waveform), waveform.size / SAMPLE_RATE
