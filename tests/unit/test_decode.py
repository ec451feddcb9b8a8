"""Decoding every codec users bring: soundfile first, PyAV (FFmpeg) for the rest; durations from
decoded samples; the header trusted for the over-length refusal only where it is exact; spans."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipeline.stages.decode import (
    SAMPLE_RATE, BadAudio, DecodeSettings, decode, decode_task_memory_bytes, header_duration,
)
from tests.pipeline.codec_files import (
    encode, id3v2_with_cover, soundfile_bytes, speech, sphere_bytes,
)

NO_XING = {"write_xing": "0", "id3v2_version": "0"}   # FFmpeg's mp3 muxer: no Xing/LAME frame, no ID3


def codec_file(kind: str, seconds: float) -> bytes:
    x16, x48, x44 = speech(seconds), speech(seconds, 48_000), speech(seconds, 44_100)
    if kind == "m4a":
        return encode(x16, 16_000, "mp4", "aac")
    if kind == "webm":
        return encode(x48, 48_000, "webm", "libopus")
    if kind == "ogg_opus":
        return encode(np.stack([x48, 0.5 * x48], axis=1), 48_000, "ogg", "libopus")
    if kind == "ogg_vorbis":
        return soundfile_bytes(x48, 48_000, "OGG", "VORBIS")
    if kind == "mp3_xing":
        return encode(np.stack([x44, x44], axis=1), 44_100, "mp3", "libmp3lame")
    if kind == "mp3_no_xing":
        return encode(x44, 44_100, "mp3", "libmp3lame", container_options=NO_XING)
    if kind == "mp3_vbr_no_xing":
        return encode(x44, 44_100, "mp3", "libmp3lame", container_options=NO_XING, vbr_quality=2)
    if kind == "mp3_cover":
        return id3v2_with_cover(600_000) + encode(x44, 44_100, "mp3", "libmp3lame",
                                                  container_options=NO_XING)
    if kind == "wav":
        return soundfile_bytes(x16, 16_000, "WAV", "PCM_16")
    if kind == "flac":
        return soundfile_bytes(np.stack([x48, x48], axis=1), 48_000, "FLAC")
    if kind == "sph":
        return sphere_bytes(x16)
    if kind == "wma":
        return encode(x16, 16_000, "asf", "wmav2", codec_options={"b": "32000"})
    if kind == "amr":
        return encode(speech(seconds, 8_000), 8_000, "amr", "libopencore_amrnb",
                      codec_options={"b": "12200"})
    raise AssertionError(kind)


KINDS = ["m4a", "webm", "ogg_opus", "ogg_vorbis", "mp3_xing", "mp3_no_xing", "mp3_vbr_no_xing",
         "mp3_cover", "wav", "flac", "sph", "wma", "amr"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_codec_decodes_to_its_true_length(kind):
    waveform = decode(codec_file(kind, 3.4))
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(waveform.size / SAMPLE_RATE - 3.4) <= 0.02 * 3.4
    assert 0.01 < float(np.sqrt(np.mean(np.square(waveform)))) < 0.5       # speech, not silence


def test_exact_lengths_of_pcm_and_flac_containers():
    assert decode(codec_file("wav", 3.4)).size == 54_400
    assert decode(codec_file("flac", 3.4)).size == 54_400
    assert decode(codec_file("sph", 3.4)).size == 54_400
    np.testing.assert_allclose(decode(codec_file("sph", 3.4)), speech(3.4), atol=1 / 32767)


def test_mp3_header_guesses_are_not_trusted():
    """libsndfile sizes these from the first frame: far too long (cover image) or far too short
    (VBR, where its reads would also stop at the guess); the decoded length is right."""
    cover, vbr = codec_file("mp3_cover", 3.4), codec_file("mp3_vbr_no_xing", 12.0)
    assert header_duration(cover) > 30.0
    assert header_duration(vbr) < 6.0
    assert abs(decode(cover, max_duration_s=30).size / SAMPLE_RATE - 3.4) < 0.068
    assert abs(decode(vbr).size / SAMPLE_RATE - 12.0) < 0.24


def test_over_long_wav_and_flac_are_refused_from_the_header():
    # The header's figure, to 0.1 s (decoding would stop with "more than 5 s").
    with pytest.raises(BadAudio) as err:
        decode(codec_file("wav", 6.0), max_duration_s=5)
    assert str(err.value) == "too long: 6.0 s > --max-duration-seconds 5"
    with pytest.raises(BadAudio) as err:
        decode(codec_file("flac", 6.0), max_duration_s=5)
    assert str(err.value) == "too long: 6.0 s > --max-duration-seconds 5"
    # A span is measured, not its file.
    assert decode(codec_file("flac", 6.0), max_duration_s=5, start_s=2.0).size == 64_000


def test_over_long_mp3_stops_decoding_at_the_limit():
    """MP3 frames concatenate: 150 copies of a 4 s file are a 600 s MP3 without a Xing header."""
    one = encode(speech(4.0), 16_000, "mp3", "libmp3lame", container_options=NO_XING)
    long_mp3 = one * 150
    started = time.perf_counter()
    full = decode(long_mp3)
    full_s = time.perf_counter() - started
    assert full.size == 150 * decode(one).size
    started = time.perf_counter()
    with pytest.raises(BadAudio) as err:
        decode(long_mp3, max_duration_s=5)
    limited_s = time.perf_counter() - started
    assert str(err.value) == ("too long: more than 5 s > --max-duration-seconds 5 "
                              "(decoding stopped at the limit)")
    assert limited_s < full_s / 10          # ~1 % of the file decoded, not all of it


def test_limit_counts_decoded_seconds_not_the_header():
    assert decode(codec_file("mp3_cover", 3.4), max_duration_s=4).size > 0


@pytest.mark.parametrize("kind", ["wav", "flac", "m4a", "webm", "mp3_xing", "mp3_vbr_no_xing"])
def test_spans_of_a_12_s_file_are_its_slices(kind):
    data = codec_file(kind, 12.0)
    full = decode(data)
    for start in (0.0, 4.0, 8.0):
        part = decode(data, start_s=start, end_s=start + 4.0)
        assert part.size == 64_000
        reference = full[int(start * SAMPLE_RATE):int(start * SAMPLE_RATE) + 64_000]
        if kind == "wav":
            np.testing.assert_array_equal(part, reference)
        else:   # same samples up to codec state after a seek (AAC noise substitution) and resampler edges
            inner = slice(320, 64_000 - 320)
            residual = np.sqrt(np.mean(np.square(part[inner] - reference[inner])))
            assert residual < 0.02 * np.sqrt(np.mean(np.square(reference[inner])))


def test_span_without_end_runs_to_the_end_of_the_file():
    data = codec_file("flac", 12.0)
    assert decode(data, start_s=9.5).size == 40_000
    assert decode(data, end_s=2.0).size == 32_000


@pytest.mark.parametrize("kind", ["wav", "m4a", "ogg_vorbis"])
def test_span_past_the_end_is_an_error(kind):
    data = codec_file(kind, 12.0)
    with pytest.raises(BadAudio, match=r"^span 10-14 s is past the end of the audio \(12\.\d+ s\)$"):
        decode(data, start_s=10.0, end_s=14.0)
    with pytest.raises(BadAudio, match=r"^span 20-24 s is past the end of the audio"):
        decode(data, start_s=20.0, end_s=24.0)
    # A rounded manifest duration (within lhotse's 25 ms tolerance) is fine.
    assert decode(data, start_s=8.0, end_s=12.01).size >= 63_800


def test_invalid_span_is_an_error():
    with pytest.raises(BadAudio, match="^invalid span: start 4.0 s, end 2.0 s"):
        decode(codec_file("wav", 6.0), start_s=4.0, end_s=2.0)


@pytest.mark.parametrize("data", [b"\x00\x01garbage" * 100, b"not audio at all, just text\n" * 50,
                                  b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(40)])
def test_undecodable_bytes_say_which_decoders_failed_in_one_line(data):
    with pytest.raises(BadAudio) as err:
        decode(data)
    text = str(err.value)
    assert text.startswith("undecodable audio (soundfile: ") and "; ffmpeg: " in text
    assert text.endswith(")") and "\n" not in text and "0x" not in text and "object at" not in text


def test_empty_and_header_errors_have_no_reprs():
    with pytest.raises(BadAudio, match="^empty file"):
        decode(b"")
    with pytest.raises(BadAudio) as err:
        header_duration(b"garbage" * 10)
    assert str(err.value) == "undecodable audio (soundfile: Format not recognised)"


def test_decode_task_memory_bound():
    # 3600 s rows: 5 waveform copies (1.07 GiB) + one 40 s segment's log-mel (31.7 MiB) + 400 MiB.
    assert decode_task_memory_bytes(DecodeSettings(), 1) == 1_604_710_400
    # Each further row of the batch keeps 2 × 3600 s × 32,000 B/s of features.
    assert decode_task_memory_bytes(DecodeSettings(), 16) == 1_604_710_400 + 15 * 230_400_000
    assert decode_task_memory_bytes(DecodeSettings(max_duration_s=20, max_segment_s=40), 1) == \
        400 * 1024**2 + 20 * 320_000 + 20 * 13 * 64_000


def test_frames_are_gathered_for_the_check_and_the_resampler_without_changing_a_sample():
    # Opus frames are 960 samples at 48 kHz: one check and one soxr call per COLLECT_SAMPLES
    # instead of per frame gives the very samples the per-frame stream gave
    import soxr

    from pipeline.stages.decode import COLLECT_SAMPLES, _collect

    wave = np.random.default_rng(3).standard_normal(48000 * 3 + 123).astype(np.float32) * 0.1
    frames = [wave[i:i + 960] for i in range(0, wave.size, 960)]
    stream = soxr.ResampleStream(48000, 16000, 1, dtype="float32")
    per_frame = np.concatenate([stream.resample_chunk(f) for f in frames]
                               + [stream.resample_chunk(np.zeros(0, np.float32), last=True)])
    assert COLLECT_SAMPLES > 960
    got = _collect(iter(frames), 48000, 3600.0)
    assert got.dtype == np.float32 and np.array_equal(got, per_frame)
    assert got.size == pytest.approx(wave.size / 3, abs=2)
    same_rate = _collect(iter(frames), 16000, 3600.0)          # no resampler: the frames joined
    assert np.array_equal(same_rate, wave)


@pytest.mark.parametrize("where", [5, -1])
def test_a_non_finite_sample_in_any_gathered_frame_is_refused(where):
    from pipeline.stages.decode import NON_FINITE_ERROR, BadAudio, _collect

    frames = [np.zeros(960, np.float32) for _ in range(80)]
    frames[where] = frames[where].copy()
    frames[where][7] = np.nan
    with pytest.raises(BadAudio) as refused:
        _collect(iter(frames), 48000, 3600.0)
    assert str(refused.value) == NON_FINITE_ERROR


def test_a_mono_ffmpeg_stream_gives_the_samples_of_its_one_plane():
    # Opus through FFmpeg: a mono frame's plane is taken as it is (no mean over one channel); the
    # result equals FFmpeg's float planes joined and resampled by one soxr stream
    import io

    import av
    import soxr

    data = encode(speech(3.0, 48_000), 48_000, "ogg", "libopus")
    stream = soxr.ResampleStream(48_000, SAMPLE_RATE, 1, dtype="float32")
    parts = []
    with av.open(io.BytesIO(data)) as container:
        to_float = av.AudioResampler(format="fltp")
        for frame in container.decode(container.streams.audio[0]):
            for converted in to_float.resample(frame):
                planes = converted.to_ndarray()
                assert planes.shape[0] == 1
                parts.append(stream.resample_chunk(planes.mean(axis=0, dtype=np.float32)))
    parts.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    assert np.array_equal(decode(data), np.concatenate(parts))
