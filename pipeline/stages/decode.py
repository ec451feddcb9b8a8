"""Decoding compressed audio to 16 kHz mono float32 and checking it, as pure functions.

Decoders, in order (lhotse's audio backend chain works the same way):

* soundfile (libsndfile): WAV/RF64/W64, FLAC, AIFF, NIST SPHERE (uncompressed), OGG (Vorbis, Opus);
* PyAV (FFmpeg in its wheel) for what libsndfile cannot open: m4a/mp4 (AAC, ALAC), webm/mkv
  (Opus, Vorbis), wma, amr, shorten-compressed SPHERE, ... MP3 goes to FFmpeg first: libsndfile
  sizes an MP3 from the first frame's bitrate when there is no Xing header (a 3.4 s file read as
  537.8 s; a VBR one as a third of its length) and its reads stop at that guess.

Both are read block by block: each block is downmixed to mono by averaging the channels and fed
to a streaming soxr resampler, so a task holds only the 16 kHz result. Durations come from the
decoded samples. The header's sample count is trusted only where the container states it exactly
(:data:`EXACT_HEADER_FORMATS`): there an over-long input is refused before decoding; elsewhere
decoding stops as soon as it passes ``--max-duration-seconds``.

A file that cannot be used raises :class:`BadAudio`, whose text (one line, no object reprs) is
the row's ``error``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
BLOCK_FRAMES = 1 << 16          # native-rate frames per soundfile read
# libsndfile formats (``sf.info().format``) whose header states the exact sample count.
EXACT_HEADER_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "NIST"})
# libsndfile formats whose length is a guess that also bounds its reads: FFmpeg decodes them first.
FFMPEG_FIRST_FORMATS = frozenset({"MP3", "MPEG"})
# libsndfile subtypes FFmpeg decodes faster (jobs.benchmark's decode_vs_limit: Ogg Opus through
# libsndfile + soxr took 1.7x the CPU of FFmpeg's decoder and resampler).
FFMPEG_FIRST_SUBTYPES = frozenset({"OPUS"})
# A span may end this far past the decoded audio (rounded manifest durations); lhotse's default
# duration-mismatch tolerance.
SPAN_TOLERANCE_S = 0.025
# FFmpeg seeks land on a packet; decoding starts this early so codecs with overlapping windows
# (AAC, Opus, Vorbis) are settled at the span's first sample.
SEEK_PREROLL_S = 1.0
SEEKABLE_DEMUXERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "ogg"})

# Non-finite samples (NaN or ±inf, which a float WAV can hold) would make every log-mel frame NaN.
# They are an error, not zeroed: the file is broken, and a transcript of a patched signal would look valid.
NON_FINITE_ERROR = ("non-finite samples (NaN or inf) in the decoded audio; the file is corrupt: "
                    "re-encode it from a clean source")

_REPR = re.compile(r"<[^<>]*\bat 0x[0-9a-fA-F]+>|'<none>'")


class BadAudio(Exception):
    """The input cannot be transcribed; ``str(exc)`` is the reason recorded on its row."""


class _DecoderFailed(Exception):
    """This decoder cannot read the input; the next one is tried."""


@dataclass(frozen=True)
class DecodeSettings:
    max_duration_s: float = 3600.0
    max_segment_s: float = 40.0
    silence_dbfs: float = -60.0
    numerics: str = "transformers"   # the features' profile (model-spec §9), resolved by the driver
    # "cpu": the decode tasks compute log-mel; "accelerator": they ship the 16 kHz samples and the
    # inference actor computes a pack's features in one call (pipeline/stages/features_batch.py).
    features_on: str = "cpu"


def one_line(text: str) -> str:
    """``text`` as one line without Python object reprs (``<_io.BytesIO object at 0x...>``)."""
    text = _REPR.sub("the input", str(text))
    return " ".join(text.split()).rstrip(":. ") or "unknown error"


def _soundfile_reason(e: Exception) -> str:
    return one_line(getattr(e, "error_string", None) or e)


def _ffmpeg_reason(e: Exception) -> str:
    return one_line(getattr(e, "strerror", None) or e)


def header_duration(data: bytes) -> float:
    """Seconds of audio according to libsndfile's reading of the header (nothing decoded).

    Exact only for :data:`EXACT_HEADER_FORMATS`; a guess for MP3. Raises :class:`BadAudio`.
    """
    if not data:
        raise BadAudio("empty file (0 bytes)")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise BadAudio(f"undecodable audio (soundfile: {_soundfile_reason(e)})") from e
    if info.samplerate <= 0:
        raise BadAudio(f"undecodable audio: sample rate {info.samplerate}")
    return info.frames / info.samplerate


def check_duration(seconds: float, settings: DecodeSettings) -> None:
    """Refuse empty audio and audio longer than ``--max-duration-seconds`` (``seconds``: exact)."""
    if seconds <= 0:
        raise BadAudio("empty audio (0 samples)")
    if seconds > settings.max_duration_s:
        raise BadAudio(f"too long: {seconds:.1f} s > --max-duration-seconds "
                       f"{settings.max_duration_s:g}")


def _too_long_while_decoding(limit_s: float) -> BadAudio:
    return BadAudio(f"too long: more than {limit_s:g} s > --max-duration-seconds {limit_s:g} "
                    "(decoding stopped at the limit)")


def _check_span(start_s: float | None, end_s: float | None) -> tuple[float, float | None]:
    start = 0.0 if start_s is None else float(start_s)
    if not np.isfinite(start) or start < 0 or (end_s is not None and not end_s > start):
        raise BadAudio(f"invalid span: start {start_s} s, end {end_s} s "
                       "(need 0 <= start < end, in seconds)")
    return start, None if end_s is None else float(end_s)


def _span_frames(start: float, end: float | None, rate: int) -> tuple[int, int | None]:
    return int(round(start * rate)), None if end is None else int(round(end * rate))


def _no_channel(channel: int, channels: int) -> BadAudio:
    return BadAudio(f"channel {channel} asked for, but the audio has {channels} channel(s) "
                    f"(0-{channels - 1})")


def _mono(block: np.ndarray, channel: int | None = None) -> np.ndarray:
    """``[frames, channels]`` → ``[frames]`` float32: the mean of the channels, or one channel."""
    if channel is not None:
        if channel >= block.shape[1]:
            raise _no_channel(channel, block.shape[1])
        return np.ascontiguousarray(block[:, channel], dtype=np.float32)
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0], dtype=np.float32)
    return block.mean(axis=1, dtype=np.float32)


COLLECT_SAMPLES = 1 << 15   # native-rate samples gathered per finite check and resampler call


def _collect(blocks: Iterator[np.ndarray], rate: int, limit_s: float) -> np.ndarray:
    """Mono native-rate blocks → one 16 kHz float32 waveform, resampled as a stream by soxr.

    Raises :class:`BadAudio` on non-finite samples and as soon as more than ``limit_s`` seconds
    arrived (no further block is decoded).
    """
    limit = limit_s * rate
    resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") \
        if rate != SAMPLE_RATE else None
    parts, pending, held, seen = [], [], 0, 0

    def flush() -> None:
        # codecs' frames are small (Opus: 960 samples): the check and the resampler see them
        # gathered, one call per COLLECT_SAMPLES instead of one per frame
        chunk = pending[0] if len(pending) == 1 else np.concatenate(pending)
        pending.clear()
        if not np.isfinite(chunk).all():
            raise BadAudio(NON_FINITE_ERROR)
        parts.append(resampler.resample_chunk(chunk) if resampler else chunk)

    for block in blocks:
        seen += block.size
        if seen > limit:
            raise _too_long_while_decoding(limit_s)
        pending.append(block)
        held += block.size
        if held >= COLLECT_SAMPLES:
            flush()
            held = 0
    if pending:
        flush()
    if resampler is not None:
        parts.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _soundfile_decode(data: bytes, limit_s: float, start: float, end: float | None,
                      channel: int | None = None) -> np.ndarray:
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise _DecoderFailed(f"soundfile: {_soundfile_reason(e)}") from e
    with f:
        if f.format in FFMPEG_FIRST_FORMATS:
            raise _DecoderFailed(f"soundfile: {f.format} length is only a header guess")
        rate = f.samplerate
        if channel is not None and channel >= f.channels:
            raise _no_channel(channel, f.channels)
        exact = f.format in EXACT_HEADER_FORMATS and f.frames > 0
        first, last = _span_frames(start, end, rate)
        if exact:
            if first >= f.frames:
                raise _span_past_end(start, end, f.frames / rate)
            want = min(f.frames, last if last is not None else f.frames) - first
            check_duration(want / rate, DecodeSettings(max_duration_s=limit_s))
        else:
            want = None if last is None else last - first
        if first:
            try:
                f.seek(first)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise _span_past_end(start, end, None) from e
        waveform = _collect(_soundfile_blocks(f, want, exact, channel), rate, limit_s)
    return waveform


def _soundfile_blocks(f: sf.SoundFile, want: int | None, exact: bool,
                      channel: int | None = None) -> Iterator[np.ndarray]:
    """Mono blocks of at most ``want`` frames (``None``: to the end of the file)."""
    got = 0
    while want is None or got < want:
        count = BLOCK_FRAMES if want is None else min(BLOCK_FRAMES, want - got)
        try:
            block = f.read(count, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise BadAudio(f"undecodable audio (soundfile: {_soundfile_reason(e)})") from e
        if not len(block):
            break
        got += len(block)
        yield _mono(block, channel)
    if exact and want is not None and got < want:
        raise BadAudio(f"truncated audio: decoded {got} of {want} samples")


def _ffmpeg_decode(data: bytes, limit_s: float, start: float, end: float | None,
                   channel: int | None = None) -> np.ndarray:
    import av

    try:
        container = av.open(io.BytesIO(data), metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as e:
        raise _DecoderFailed(f"ffmpeg: {_ffmpeg_reason(e)}") from e
    with container:
        if not container.streams.audio:
            raise _DecoderFailed("ffmpeg: no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        if not rate or rate <= 0:
            raise _DecoderFailed(f"ffmpeg: sample rate {rate}")
        first, last = _span_frames(start, end, rate)
        seek_s = start - SEEK_PREROLL_S
        # Seek only in containers with a sample index and sample-exact timestamps (mp4/m4a, ogg).
        # Elsewhere (MP3 and ADTS seek by a bitrate guess; webm stamps in 1 ms) decode from the
        # start and count samples, which is exact.
        sought = (seek_s > 0 and container.format.name in SEEKABLE_DEMUXERS
                  and bool(stream.time_base) and stream.time_base * rate <= 1)
        if sought:
            origin = stream.start_time or 0
            container.seek(origin + int(seek_s / stream.time_base), stream=stream)
        elif first > 0 or last is not None:
            # A span decoded from the start: earlier spans of the same file left the frames
            # (``span_cache``), so many spans cost one pass over the file.
            from pipeline.stages import span_cache

            try:
                _, blocks = span_cache.span_blocks(data, first, last, channel, _ffmpeg_blocks)
                return _collect(iter(blocks), rate, limit_s)
            except span_cache.TooBig:
                pass
            except (av.FFmpegError, ValueError) as e:
                raise _DecoderFailed(f"ffmpeg: {_ffmpeg_reason(e)}") from e
        try:
            return _collect(_ffmpeg_blocks(container, stream, first, last, sought, channel), rate,
                            limit_s)
        except (av.FFmpegError, ValueError) as e:
            raise _DecoderFailed(f"ffmpeg: {_ffmpeg_reason(e)}") from e


def _ffmpeg_blocks(container, stream, first: int, last: int | None,
                   sought: bool, channel: int | None = None) -> Iterator[np.ndarray]:
    """Mono blocks of native-rate samples ``[first, last)``; positions from the first frame's pts
    after a seek (frames are contiguous from there), from 0 otherwise."""
    import av

    to_float = av.AudioResampler(format="fltp")
    rate, origin = stream.codec_context.sample_rate, stream.start_time or 0
    position = None if sought else 0
    for frame in container.decode(stream):
        if position is None:
            position = 0 if frame.pts is None else \
                int(round(float((frame.pts - origin) * stream.time_base) * rate))
        for converted in to_float.resample(frame):
            planes = converted.to_ndarray()                      # [channels, n]
            if channel is None:
                block = planes[0] if planes.shape[0] == 1 else planes.mean(axis=0, dtype=np.float32)
            else:
                block = _mono(planes.T, channel)                 # → [n]
            lo, hi = max(first - position, 0), block.size if last is None else min(block.size, last - position)
            position += block.size
            if hi > lo:
                yield block[lo:hi]
        if last is not None and position >= last:
            return


def _span_past_end(start: float, end: float | None, length_s: float | None) -> BadAudio:
    span = f"{start:g}-{end:g} s" if end is not None else f"from {start:g} s"
    of = f" ({length_s:.3f} s)" if length_s is not None else ""
    return BadAudio(f"span {span} is past the end of the audio{of}")


def decode(data: bytes, *, max_duration_s: float = float("inf"), start_s: float | None = None,
           end_s: float | None = None, channel: int | None = None) -> np.ndarray:
    """Compressed bytes → 16 kHz mono float32 ``[samples]`` of the span ``[start_s, end_s)``.

    ``start_s``/``end_s`` are seconds of the file (``None``: its start / its end). Raises
    :class:`BadAudio`: ``undecodable audio (soundfile: ...; ffmpeg: ...)`` when no decoder can
    read it, ``too long: ...`` past ``max_duration_s`` (from the header where it is exact, else
    once decoding passes it), ``truncated audio``, non-finite samples, empty audio, or a span
    that starts past the end or ends more than :data:`SPAN_TOLERANCE_S` past it. ``channel``
    (0-based) decodes that channel alone (``BadAudio`` when the file has no such channel);
    ``None`` downmixes (the mean of the channels).
    """
    if not data:
        raise BadAudio("empty file (0 bytes)")
    start, end = _check_span(start_s, end_s)
    if start > 0 or end is not None:
        kept = _kept_span(data, start, end, channel, max_duration_s)
        if kept is not None:
            return _checked(kept, start, end)
    decoders = [_soundfile_decode, _ffmpeg_decode]
    try:
        info = sf.info(io.BytesIO(data))
        if info.format in FFMPEG_FIRST_FORMATS or info.subtype in FFMPEG_FIRST_SUBTYPES:
            decoders.reverse()
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    failures = []
    for decoder in decoders:
        try:
            waveform = decoder(data, max_duration_s, start, end, channel)
            break
        except _DecoderFailed as e:
            failures.append(str(e))
    else:
        raise BadAudio(f"undecodable audio ({'; '.join(failures)})")
    return _checked(waveform, start, end)


def _kept_span(data: bytes, start: float, end: float | None, channel: int | None,
               limit_s: float) -> np.ndarray | None:
    """The span from the frames an earlier span of the same file left (``span_cache``); ``None``
    when the file is not kept."""
    import av

    from pipeline.stages import span_cache

    try:
        kept = span_cache.kept_span(data, channel, lambda rate: _span_frames(start, end, rate),
                                    _ffmpeg_blocks)
    except span_cache.TooBig:
        return None
    except (av.FFmpegError, ValueError) as e:
        raise BadAudio(f"undecodable audio (ffmpeg: {_ffmpeg_reason(e)})") from e
    return None if kept is None else _collect(iter(kept[1]), kept[0], limit_s)


def _checked(waveform: np.ndarray, start: float, end: float | None) -> np.ndarray:
    if start > 0 and waveform.size == 0:
        raise _span_past_end(start, end, None)
    if end is not None and waveform.size / SAMPLE_RATE < (end - start) - SPAN_TOLERANCE_S:
        raise _span_past_end(start, end, start + waveform.size / SAMPLE_RATE)
    if waveform.size == 0:
        raise BadAudio("empty audio (0 samples)")
    return np.ascontiguousarray(waveform, dtype=np.float32)


def decode_task_memory_bytes(settings: DecodeSettings, batch_rows: int) -> int:
    """Bytes one decode task may hold while it decodes a batch of ``batch_rows`` rows.

    ``batch_rows`` is the ``map_batches`` batch size (rows decoded before the task yields them).
    Worst case, every row is ``max_duration_s`` long. The row being decoded peaks at five copies of
    its 16 kHz float32 waveform (the waveform plus the float64 square and cumulative sum the
    segment planner takes of it), or at the waveform plus three copies of its features (segments,
    joined, bytes), plus one segment's log-mel working set (STFT and mel buffers, ~13 × that
    segment's waveform). Each finished row holds its features twice (bytes + the Arrow table built
    from them); with ``features_on="accelerator"`` its samples twice instead. Features are 160
    float32 every 20 ms (32,000 B/s); the waveform is 64,000 B/s. On top:
    :data:`WORKER_BASELINE_BYTES`. Measured: a 1200 s 48 kHz stereo FLAC peaked 371 MiB over
    the worker's baseline; this bound gives 398 MiB for it.
    """
    waveform_bps = SAMPLE_RATE * 4
    features_bps = 50 * 160 * 4
    longest = settings.max_duration_s
    segment = min(settings.max_segment_s, longest)
    decoding = longest * max(5 * waveform_bps, waveform_bps + 3 * features_bps) \
        + segment * 13 * waveform_bps
    # What a finished row ships: features, or with --features-on accelerator the samples.
    shipped_bps = waveform_bps if settings.features_on == "accelerator" else features_bps
    finished = max(batch_rows - 1, 0) * longest * 2 * shipped_bps
    return int(WORKER_BASELINE_BYTES + decoding + finished)


WORKER_BASELINE_BYTES = 400 * 1024**2   # a decode worker's RSS with torch and pyarrow imported


def level_dbfs(waveform: np.ndarray) -> float:
    """RMS level of the whole signal in dB relative to full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(waveform, dtype=np.float64)))
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def is_silent(waveform: np.ndarray, silence_dbfs: float) -> bool:
    return level_dbfs(waveform) < silence_dbfs


def features_for(waveform: np.ndarray, log_mel) -> np.ndarray:
    """``log_mel`` of one utterance; inputs it refuses (under one 25 ms window; hub numerics: under
    20 ms, which has no frame) become :class:`BadAudio`."""
    try:
        return log_mel(waveform)
    except ValueError as e:
        raise BadAudio(f"too short or invalid for features: {one_line(e)}") from e
