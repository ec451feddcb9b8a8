"""--timestamps word --subtitles srt,vtt,ctm end to end: word times in file time, files a real
parser reads, statuses for rows without times (one job run of the tiny checkpoint)."""

from __future__ import annotations

import html
import io
import json

import numpy as np
import pytest
import soundfile as sf

from model import load_model, log_mel
from model.alignment import words as aligned_words
from pipeline.stages.decode import decode
from pipeline.stages.segment import plan_segments
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.pipeline.conftest import read_output, run_tiny

SR = 16000
SPAN = (1.0, 6.0)  # of a06_long (7 s): 5 s, cut into 2 segments at --max-segment-seconds 3


def norm(text: str) -> str:
    return " ".join(text.split())


def expected_words(model, data: bytes, start_s: float | None, end_s: float | None, max_segment_s: float):
    """Word dicts in file time, computed the way the model computes them alone on each segment."""
    wave = decode(data, start_s=start_s, end_s=end_s)
    offset = start_s or 0.0
    out = []
    segments = plan_segments(wave, max_segment_s)
    results, aligned = model.transcribe_with_alignment([log_mel(wave[a:b]) for a, b in segments])
    for (a, b), r, al in zip(segments, results, aligned):
        found = aligned_words(al, model.decoder.token_bytes(r.token_ids), duration_s=(b - a) / SR) or []
        out += [(w.word, offset + a / SR + w.start_s, offset + a / SR + w.end_s, w.confidence) for w in found]
    return out, len(segments)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timestamps")
    sf.write(tmp / "silent.wav", np.zeros(SR, dtype=np.float32), SR)
    (tmp / "corrupt.flac").write_bytes(b"fLaC not really")
    rows = [
        {"id": "whole", "audio_filepath": str(TINY_AUDIO / "a04.flac")},
        {"id": "span", "audio_filepath": str(TINY_AUDIO / "a06_long.flac"), "offset": SPAN[0],
         "duration": SPAN[1] - SPAN[0]},
        {"id": "nothing", "audio_filepath": str(TINY_AUDIO / "a01_short.flac")},
        {"id": "sub/silent", "audio_filepath": str(tmp / "silent.wav")},
        {"id": "corrupt", "audio_filepath": str(tmp / "corrupt.flac")},
    ]
    manifest = tmp / "in.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp / "out"
    summary = run_tiny([manifest], out, device="cpu", max_segment_seconds=3.0, timestamps="word",
                       subtitles=("srt", "vtt", "ctm"))
    return out, {r["id"]: r for r in read_output(out)}, summary


def test_word_times_are_the_models_own_in_file_time(job):
    _, rows, summary = job
    assert summary["rows"] == 5
    model = load_model(TINY_MODEL, device="cpu")
    for uid, source, span in (("whole", "a04.flac", (None, None)), ("span", "a06_long.flac", SPAN)):
        row = rows[uid]
        want, n_segments = expected_words(model, (TINY_AUDIO / source).read_bytes(), *span, 3.0)
        assert row["timestamps_status"] == "ok" and len(row["segments"]) == n_segments >= 2
        got = [(w["word"], w["start_s"], w["end_s"], w["confidence"]) for w in row["words"]]
        assert [g[0] for g in got] == [w[0] for w in want] and len(got) > 2
        np.testing.assert_allclose([g[1:3] for g in got], [w[1:3] for w in want], atol=1e-9)
        np.testing.assert_allclose([g[3] for g in got], [w[3] for w in want], atol=1e-5)
        assert " ".join(g[0] for g in got) == norm(row["text"])
        assert len(row["segment_texts"]) == n_segments
    # The span's segments and words lie in file seconds: [1, 6), cut at the file's own times.
    span = rows["span"]
    assert span["segments"][0]["start_s"] == SPAN[0] and span["segments"][-1]["end_s"] == pytest.approx(SPAN[1])
    starts = [w["start_s"] for w in span["words"]]
    assert starts == sorted(starts) and SPAN[0] <= starts[0] and span["words"][-1]["end_s"] <= SPAN[1] + 1e-9
    # A word at 80 ms resolution: each time is the segment start plus a multiple of 0.08 s (or its end).
    seg_starts = [s["start_s"] for s in span["segments"]]
    for w in span["words"]:
        local = w["start_s"] - max(s for s in seg_starts if s <= w["start_s"] + 1e-9)
        assert abs(local / 0.08 - round(local / 0.08)) < 1e-6


def test_rows_without_times_say_why(job):
    _, rows, _ = job
    assert (rows["nothing"]["text"], rows["nothing"]["timestamps_status"], rows["nothing"]["words"]) == \
        ("", "empty", None)
    silent = rows["sub/silent"]
    assert (silent["silent"], silent["timestamps_status"], silent["words"]) == (True, "not_run", None)
    assert silent["segments"] == [{"start_s": 0.0, "end_s": 1.0}] and silent["segment_texts"] == [""]
    bad = rows["corrupt"]
    assert bad["error"] and (bad["timestamps_status"], bad["words"]) == ("not_run", None)


def test_subtitle_files_parse_and_hold_exactly_the_rows_words(job):
    import srt
    import webvtt
    from lhotse import SupervisionSegment, SupervisionSet

    out, rows, _ = job
    folder = out / "subtitles"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == sorted(f"{u}.{f}" for u in ("whole", "span", "nothing", "sub/silent")
                           for f in ("srt", "vtt", "ctm"))
    for uid in ("whole", "span"):
        row = rows[uid]
        subs = list(srt.parse((folder / f"{uid}.srt").read_text()))
        assert " ".join(s.content for s in subs) == norm(row["text"])
        assert all(len(s.content) <= 42 or " " not in s.content for s in subs)
        assert subs[0].start.total_seconds() == pytest.approx(row["words"][0]["start_s"], abs=5e-4)
        assert subs[-1].end.total_seconds() == pytest.approx(row["words"][-1]["end_s"], abs=5e-4)
        captions = webvtt.read_buffer(io.StringIO((folder / f"{uid}.vtt").read_text()))
        assert " ".join(html.unescape(c.text) for c in captions) == norm(row["text"])
        assert [(c.start, c.end) for c in captions] == [
            (srt.timedelta_to_srt_timestamp(s.start).replace(",", "."),
             srt.timedelta_to_srt_timestamp(s.end).replace(",", ".")) for s in subs]
        # CTM through lhotse's reader: the words, their file times and confidences
        duration = row["duration_s"]
        start = row["start_s"] or 0.0
        sups = SupervisionSet.from_segments([SupervisionSegment(uid, uid, start, duration, channel=1)])
        [sup] = sups.with_alignment_from_ctm(folder / f"{uid}.ctm")
        items = sup.alignment["word"]
        assert [i.symbol for i in items] == [w["word"] for w in row["words"]]
        np.testing.assert_allclose([i.start for i in items], [w["start_s"] for w in row["words"]], atol=5e-4)
        np.testing.assert_allclose([i.end for i in items], [w["end_s"] for w in row["words"]], atol=1e-3)
        np.testing.assert_allclose([i.score for i in items], [w["confidence"] for w in row["words"]], atol=1e-4)
    assert (folder / "nothing.srt").read_text() == "" and (folder / "sub/silent.vtt").read_text() == "WEBVTT\n\n"
