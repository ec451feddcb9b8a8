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
import soxr

SAMPLE_RATE = 16000
CODECS = ("flac", "mp3", "opus", "aac")
# libsndfile reads these exactly (MP3 only by a length guess, AAC not at all): its plain path counts.
SOUNDFILE_CODECS = ("flac", "opus")


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
    """16 kHz mono float32 -> file bytes: ``flac`` (16-bit), ``mp3`` (64 kb/s), ``opus`` (Ogg, 32 kb/s),
    ``aac`` (m4a, 48 kb/s)."""
    if codec == "flac":
        buf = io.BytesIO()
        sf.write(buf, wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    if codec == "mp3":
        return _encode_av(wave, "mp3", "libmp3lame", SAMPLE_RATE, 64_000)
    if codec == "opus":
        return _encode_av(wave, "ogg", "libopus", 48000, 32_000)
    if codec == "aac":
        return _encode_av(wave, "ipod", "aac", SAMPLE_RATE, 48_000)
    raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")


def plain_av(data: bytes) -> np.ndarray:
    """The plain FFmpeg path: PyAV decoding, FFmpeg's own resampler to 16 kHz mono float32."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        parts = [f.to_ndarray()[0] for frame in container.decode(stream) for f in resampler.resample(frame)]
        parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(parts)


def plain_soundfile(data: bytes, block: int = 1 << 16) -> np.ndarray:
    """The plain libsndfile path: soundfile's block reads, channel mean, a soxr stream to 16 kHz."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        stream = soxr.ResampleStream(f.samplerate, SAMPLE_RATE, 1, dtype="float32") \
            if f.samplerate != SAMPLE_RATE else None
        parts = []
        for b in f.blocks(blocksize=block, dtype="float32", always_2d=True):
            mono = b[:, 0] if b.shape[1] == 1 else b.mean(axis=1, dtype=np.float32)
            parts.append(stream.resample_chunk(mono) if stream else mono)
        if stream:
            parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    return np.concatenate(parts)


def _pass_cpu(fn, files: list[bytes]) -> float:
    start = time.thread_time()
    for data in files:
        fn(data)
    return time.thread_time() - start


def decode_vs_limit(files: dict[str, list[bytes]], min_cpu_seconds: float, min_passes: int = 5) -> dict:
    """Per codec: CPU seconds of the pipeline's ``decode`` (decode + downmix + resample) over
    ``files`` against the fastest plain path through the same builds (``plain_av`` for every codec,
    ``plain_soundfile`` for ``SOUNDFILE_CODECS``), passes taking turns, CPU time of this thread
    (the decoders are single-threaded). Entry: ``ratio`` (the median over passes of ours ÷ the
    fastest plain path, that path chosen by its median), ``ours_cpu_seconds``, ``plain_cpu_seconds`` per path."""
    from pipeline.stages.decode import decode

    ways = {codec: {"ours": decode, "pyav": plain_av,
                    **({"soundfile": plain_soundfile} if codec in SOUNDFILE_CODECS else {})}
            for codec in files}
    for codec in files:   # a plain path that cannot read every file of a codec is no limit for it
        for way, fn in list(ways[codec].items()):
            try:
                for data in files[codec]:
                    fn(data)
            except Exception:  # noqa: BLE001 - e.g. libsndfile and a short Opus file
                if way != "ours":
                    del ways[codec][way]
                else:
                    raise
    passes = {codec: {w: [] for w in ways[codec]} for codec in files}
    while any(len(p) < min_passes or sum(p) < min_cpu_seconds / 3
              for c in passes for p in passes[c].values()):
        for codec in files:
            for way, fn in ways[codec].items():
                passes[codec][way].append(_pass_cpu(fn, files[codec]))
    out = {}
    for codec in files:
        med = {w: float(np.median(p)) for w, p in passes[codec].items()}
        plain = {w: v for w, v in med.items() if w != "ours"}
        best = min(plain, key=plain.get)
        runs = [o / b for o, b in zip(passes[codec]["ours"], passes[codec][best])]   # pass by pass
        # the median of the pass-by-pass ratios: the two paths' passes run back to back, so a
        # change of the machine's speed between passes cancels out of each ratio
        out[codec] = {"ratio": float(np.median(runs)), "ratio_runs": runs, "ours_cpu_seconds": med["ours"],
                      "plain_cpu_seconds": plain, "fastest_plain": best,
                      "passes": len(passes[codec]["ours"])}
    return out


def encoded_files(waves: list[np.ndarray]) -> dict[str, list[bytes]]:
    """``waves`` encoded as each codec of ``CODECS``."""
    return {codec: [encode(w, codec) for w in waves] for codec in CODECS}


class DecodeCosts:
    """Decode + features of ``waves`` encoded as each codec of ``CODECS``, on one thread, keyed by
    codec (:meth:`results`).

    Passes over all the files of each codec take turns (flac, mp3, opus, flac, ...), each full pass
    followed by a decode-only pass, in calls of :meth:`run` that a benchmark spreads over its run
    (before, between and after the stand-in pipeline's rounds). The first call runs each codec
    until it has had ``min_passes`` and ``min_cpu_seconds`` of CPU; every later call runs each codec
    that same number of passes, so that every stretch of the run weighs the same in the median
    pass reported (a CPU-seconds goal per call would give a fast stretch of the machine more
    passes than a slow one). One pass over a small corpus takes tens of ms, and this VM's speed
    swings by up to half over minutes (the machine reference 14.5 ms at one run's start, 23.7 ms
    at its end), so a single pass, or one block of passes, moved by 10-35 % between runs.

    Each codec's entry: ``cores_per_1000x``, the CPU cores needed to decode and featurise 1,000 s
    of audio per wall second (= 1000 × CPU seconds ÷ audio seconds), the CPU and audio seconds it
    comes from and the passes; ``decode_cores_per_1000x``, the same for decoding alone (features on
    the accelerator): that figure × the median ratio of each decode-only pass to the full pass just
    before it (``decode_share_runs``); or ``cores_per_1000x: None`` and ``error`` when the pipeline's
    decoder could not read a file of that codec.
    """

    def __init__(self, waves: list[np.ndarray], files: dict[str, list[bytes]] | None = None):
        from bench.machine import one_torch_thread
        from model import log_mel
        from pipeline.stages.decode import DecodeSettings
        from pipeline.stages.prepare import decode_row

        self.settings = DecodeSettings(max_duration_s=3600.0, max_segment_s=40.0, silence_dbfs=-60.0)
        self.files = files or encoded_files(waves)
        self.passes: dict[str, list[float]] = {codec: [] for codec in CODECS}
        self.decode_passes: dict[str, list[float]] = {codec: [] for codec in CODECS}
        self.info: dict[str, dict] = {}
        self.per_slot: dict[str, int] | None = None   # passes per codec in each slot, set by the first
        self.slots_run = 0
        with one_torch_thread():
            for codec in CODECS:
                decode_row({"id": "warm", "source": "warm"}, self.files[codec][0], None, self.settings, log_mel)
                rows = self._full_pass(codec)[1]
                failed = [r["error"] for r in rows if r["error"]]
                if failed:  # e.g. a decoder without this codec: reported, not fatal for the benchmark
                    self.info[codec] = {"cores_per_1000x": None,
                                        "error": f"{len(failed)} of {len(rows)} failed: {failed[0]}"}
                else:
                    self.info[codec] = {"audio_seconds": sum(r["duration_s"] for r in rows),
                                        "bytes": sum(len(f) for f in self.files[codec])}
        self.timed = [c for c in CODECS if "error" not in self.info[c]]

    def _full_pass(self, codec: str) -> tuple[float, list[dict]]:
        from model import log_mel
        from pipeline.stages.prepare import decode_row

        start = time.thread_time()
        rows = [decode_row({"id": str(i), "source": str(i)}, data, None, self.settings, log_mel)
                for i, data in enumerate(self.files[codec])]
        return time.thread_time() - start, rows

    def _decode_only(self, codec: str) -> float:
        """CPU of what a decoder still does when the features are computed on the accelerator:
        decode, downmix, resample, the silence check and the segment plan."""
        from pipeline.stages.decode import decode, is_silent
        from pipeline.stages.segment import plan_segments

        start = time.thread_time()
        for data in self.files[codec]:
            wave = decode(data, max_duration_s=self.settings.max_duration_s)
            is_silent(wave, self.settings.silence_dbfs)
            plan_segments(wave, self.settings.max_segment_s)
        return time.thread_time() - start

    def run(self, min_cpu_seconds: float = 3.0, min_passes: int = 5) -> None:
        """One slot of passes (class docstring); the goals count in the first call only."""
        from bench.machine import one_torch_thread

        def one(codec: str) -> None:
            self.passes[codec].append(self._full_pass(codec)[0])
            self.decode_passes[codec].append(self._decode_only(codec))

        def short(codec: str) -> bool:
            return len(self.passes[codec]) < min_passes or sum(self.passes[codec]) < min_cpu_seconds

        with one_torch_thread():
            if self.per_slot is None:
                while any(short(c) for c in self.timed):
                    for codec in filter(short, self.timed):
                        one(codec)
                self.per_slot = {c: len(self.passes[c]) for c in self.timed}
            else:
                for i in range(max(self.per_slot.values(), default=0)):
                    for codec in self.timed:
                        if i < self.per_slot[codec]:
                            one(codec)
        self.slots_run += 1

    def results(self) -> dict:
        out = {}
        for codec in CODECS:
            entry = dict(self.info[codec])
            passes = self.passes[codec]
            if codec in self.timed and passes:
                cpu = float(np.median(passes))
                # decode alone from the pass pairs (each decode-only pass ran right after its full
                # pass): the median full pass × the median of the pairs' ratios. Two medians taken
                # apart could land in the VM's two speeds and put decode alone above decode +
                # features (Opus, once).
                pairs = [d / f for f, d in zip(passes, self.decode_passes[codec]) if f > 0]
                dec = cpu * float(np.median(pairs)) if pairs else None
                entry.update(cores_per_1000x=1000.0 * cpu / entry["audio_seconds"],
                             cpu_seconds_runs=list(passes), decode_cpu_seconds_runs=list(self.decode_passes[codec]),
                             decode_share_runs=pairs, cpu_seconds=cpu, passes=len(passes),
                             slots=self.slots_run, passes_per_slot=self.per_slot[codec],
                             decode_cores_per_1000x=None if dec is None
                             else 1000.0 * dec / entry["audio_seconds"])
            out[codec] = entry
        return out

