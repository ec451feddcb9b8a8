"""Codec files users bring (m4a/AAC, webm/Opus, MP3 with a cover image and no Xing header) become
transcript rows, from a folder item, a manifest item (with a span) and through the whole job."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline import TranscribeConfig, run_transcribe
from pipeline.sources.items import file_item
from pipeline.stages.decode import SAMPLE_RATE, DecodeSettings, decode
from pipeline.stages.prepare import decode_row
from tests.conftest import TINY_MODEL
from tests.pipeline.codec_files import encode, id3v2_with_cover, speech
from tests.pipeline.conftest import read_output, read_summary

NO_XING = {"write_xing": "0", "id3v2_version": "0"}


def write_codec_files(folder) -> dict[str, float]:
    """name → true seconds of the speech inside."""
    folder.mkdir()
    (folder / "vox.m4a").write_bytes(encode(speech(3.0), 16_000, "mp4", "aac"))
    (folder / "clip.webm").write_bytes(encode(speech(2.5, 48_000), 48_000, "webm", "libopus"))
    (folder / "song.mp3").write_bytes(id3v2_with_cover(300_000) + encode(
        speech(3.4, 44_100), 44_100, "mp3", "libmp3lame", container_options=NO_XING))
    return {"vox": 3.0, "clip": 2.5, "song": 3.4}


def row_of(item: dict, data: bytes) -> dict:
    from model import log_mel

    return decode_row(item, data, None, DecodeSettings(), log_mel)


def test_m4a_from_a_folder_and_from_a_manifest_gives_features(tmp_path):
    write_codec_files(tmp_path / "in")
    path = tmp_path / "in" / "vox.m4a"
    data = path.read_bytes()
    folder_row = row_of(file_item("vox", str(path)), data)
    assert folder_row["error"] is None and not folder_row["silent"]
    assert abs(folder_row["duration_s"] - 3.0) <= 0.06
    assert folder_row["num_frames"] == len(folder_row["features"]) // (160 * 4) > 0
    assert folder_row["decode_seconds"] > 0 and folder_row["features_seconds"] > 0
    # A manifest row of the same file, as its 1.0-2.5 s segment (NeMo offset/duration).
    item = {**file_item("vox@1.0-2.5", str(path), reference="hello"), "start_s": 1.0, "end_s": 2.5}
    span_row = row_of(item, data)
    assert (span_row["error"], span_row["duration_s"], span_row["reference"]) == (None, 1.5, "hello")
    assert span_row["num_frames"] == 75 + 1         # ceil((24000 // 160 + 1) / 2)
    past = row_of({**item, "start_s": 2.0, "end_s": 6.0}, data)
    assert past["error"].startswith("span 2-6 s is past the end of the audio (3.")
    assert past["features"] is None and past["duration_s"] is None


def test_garbage_bytes_give_a_one_line_error_row(tmp_path):
    row = row_of(file_item("junk", str(tmp_path / "junk.m4a")), b"\x13\x37 not a movie " * 64)
    assert row["error"] == ("undecodable audio (soundfile: Format not recognised; "
                            "ffmpeg: Invalid data found when processing input)")


def test_codec_files_through_the_job(ray_session, tmp_path):
    from model import load_model, log_mel

    truth = write_codec_files(tmp_path / "in")
    manifest = tmp_path / "in" / "list.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": str(tmp_path / "in" / f"{name}.{ext}"),
                                            "text": name, "id": name}) + "\n"
                                for name, ext in [("vox", "m4a"), ("clip", "webm"), ("song", "mp3")]))
    out = tmp_path / "out"
    run_transcribe(TranscribeConfig(inputs=(str(manifest),), output=str(out),
                                    model=str(TINY_MODEL), actors=(1, 1)))
    rows = {r["id"]: r for r in read_output(out)}
    assert sorted(rows) == ["clip", "song", "vox"]
    model = load_model(str(TINY_MODEL), device="cpu", dtype="float32")  # no fixture value: fp32
    for name, seconds in truth.items():
        row = rows[name]
        assert row["error"] is None and row["reference"] == name
        assert abs(row["duration_s"] - seconds) <= 0.02 * seconds
        waveform = decode((tmp_path / "in" / row["source"].rsplit("/", 1)[-1]).read_bytes())
        assert row["duration_s"] == waveform.size / SAMPLE_RATE
        [own] = model.transcribe([log_mel(waveform)])
        assert (row["token_ids"], row["text"], row["draft_text"]) == \
            (list(own.token_ids), own.text, own.draft_text)
        assert abs(row["confidence"] - own.confidence) < 1e-6
        assert row["decode_seconds"] > 0 and row["features_seconds"] > 0
    summary = read_summary(out)
    assert (summary["rows"], summary["errors"]) == (3, 0)
    assert summary["audio_seconds"] == pytest.approx(sum(r["duration_s"] for r in rows.values()), abs=1e-3)
    assert np.isfinite(summary["rtfx"])
