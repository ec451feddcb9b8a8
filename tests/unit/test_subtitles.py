"""Subtitle cues and files (pipeline/sinks/subtitles.py) and per-row time columns
(pipeline/stages/timestamps.py), as pure functions; parsed back with real parsers."""

import html
import io

import numpy as np
import pytest
import srt
import webvtt

from model.alignment import OK, TOO_MANY_TOKENS, TokenAlignment
from model.nar import Transcription
from pipeline.sinks.subtitles import MAX_LINE_CHARS, cues, files_for, subtitle_path
from pipeline.stages.timestamps import AlignedTranscription, time_columns


def w(word, start, end, conf=0.9):
    return {"word": word, "start_s": start, "end_s": end, "confidence": conf}


def test_cues_cut_at_pauses_line_length_and_duration():
    words = [w("one", 0.0, 0.16), w("two", 0.24, 0.4),       # 80 ms gap: same cue
             w("three", 0.96, 1.2),                            # 0.56 s pause: new cue
             *[w("x" * 9, 1.2 + 0.08 * i, 1.28 + 0.08 * i) for i in range(5)],  # 42-char limit
             w("late", 20.0, 20.08)]
    got = cues(words)
    assert [c[2] for c in got] == ["one two", "three " + " ".join(["x" * 9] * 3), " ".join(["x" * 9] * 2), "late"]
    assert all(len(c[2]) <= MAX_LINE_CHARS for c in got)
    assert got[0][:2] == (0.0, 0.4) and got[1][0] == 0.96 and got[-1][:2] == (20.0, 20.08)
    # A cue never outlasts 7 s even without pauses.
    steady = [w(f"w{i}", 0.4 * i, 0.4 * i + 0.32) for i in range(30)]
    assert all(end - start <= 7.0 for start, end, _ in cues(steady))


def test_srt_vtt_ctm_parse_back_with_real_parsers_and_escape_markup():
    row = {"id": "spk 1/utt", "error": None, "text": "a<b & c>d fine",
           "words": [w("a<b", 61.0, 61.08, 0.5), w("&", 61.2, 61.28), w("c>d", 3661.5, 3661.58), w("fine", 3661.6, 3661.9)]}
    files = files_for(row, ("srt", "vtt", "ctm"))
    subs = list(srt.parse(files["srt"]))
    assert [s.content for s in subs] == ["a<b &", "c>d fine"]
    assert subs[1].start.total_seconds() == pytest.approx(3661.5) and subs[1].end.total_seconds() == pytest.approx(3661.9)
    captions = webvtt.read_buffer(io.StringIO(files["vtt"]))
    assert [html.unescape(c.text) for c in captions] == ["a<b &", "c>d fine"]  # as a player shows it and captions[1].start == "01:01:01.500"
    assert "a&lt;b &amp;" in files["vtt"]
    lines = [line.split() for line in files["ctm"].splitlines()]
    assert lines[0] == ["spk_1/utt", "1", "61.000", "0.080", "a<b", "0.5000"]
    assert [float(x[2]) + float(x[3]) for x in lines] == pytest.approx([61.08, 61.28, 3661.58, 3661.9])
    assert subtitle_path("bkt/out", "../a/./b", "srt") == "bkt/out/subtitles/a/b.srt"


def test_rows_without_word_times_get_segment_cues_and_no_ctm_lines():
    row = {"id": "u", "error": None, "text": "first part second part is rather longer than one line of text",
           "words": None, "segments": [{"start_s": 10.0, "end_s": 12.5}, {"start_s": 12.5, "end_s": 20.0}],
           "segment_texts": ["first part", "second part is rather longer than one line of text"]}
    files = files_for(row, ("srt", "ctm"))
    subs = list(srt.parse(files["srt"]))
    assert [(s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [(10.0, 12.5), (12.5, 20.0)]
    assert " ".join(s.content.replace("\n", " ") for s in subs) == row["text"]
    assert all(len(line) <= MAX_LINE_CHARS for s in subs for line in s.content.split("\n"))
    assert files["ctm"] == ""
    assert files_for({"id": "e", "error": "undecodable audio"}, ("srt",)) == {}


class Pieces:
    """A stand-in for the tokenizer's byte table: id → bytes."""

    def __init__(self, table):
        self.table = table

    def token_bytes(self, ids):
        return [self.table[i] for i in ids]


def aligned(ids, text, status, first=(), last=(), frames=40):
    al = TokenAlignment(status, np.array(first, dtype=np.int64), np.array(last, dtype=np.int64),
                        np.zeros(len(first)), frames, 4)
    return AlignedTranscription(token_ids=ids, draft_ids=ids, text=text, draft_text=text, confidence=1.0, alignment=al)


def test_time_columns_shift_segments_to_file_time_and_report_failures():
    decoder = Pieces({1: b" hi", 2: b" there", 3: b"!"})
    row = {"id": "x", "error": None, "silent": False, "start_s": 100.0, "duration_s": 8.0,
           "segments": [{"start_s": 100.0, "end_s": 104.0}, {"start_s": 104.0, "end_s": 108.0}]}
    seg1 = aligned([1, 2], " hi there", OK, [2, 5], [2, 6])
    seg2 = aligned([2, 3], " there!", OK, [0, 1], [0, 1])
    cols = time_columns(row, [seg1, seg2], "word", decoder)
    assert cols["timestamps_status"] == "ok" and cols["segment_texts"] == ["hi there", "there!"]
    assert [(x["word"], round(x["start_s"], 6), round(x["end_s"], 6)) for x in cols["words"]] == [
        ("hi", 100.16, 100.24), ("there", 100.4, 100.56), ("there!", 104.0, 104.16)]
    # one segment without a path: the whole row says so and has no words
    bad = aligned([1, 1, 1, 1], " hi hi hi hi", TOO_MANY_TOKENS)
    cols = time_columns(row, [seg1, bad], "word", decoder)
    assert (cols["timestamps_status"], cols["words"]) == ("too_many_tokens", None)
    # an empty segment next to a timed one is fine; all empty is "empty"
    nothing = aligned([], "", "empty")
    assert time_columns(row, [nothing, seg2], "word", decoder)["timestamps_status"] == "ok"
    assert time_columns(row, [nothing, nothing], "word", decoder)["timestamps_status"] == "empty"
    # words that would not join to the text are refused, not written
    liar = aligned([1], " hello", OK, [0], [0])
    assert time_columns({**row, "segments": row["segments"][:1]}, [liar], "word", decoder)["timestamps_status"] == \
        "text_mismatch"
    # segment mode: texts and segments, no words; none: nothing added
    plain = Transcription(token_ids=[1], draft_ids=[1], text=" hi", draft_text=" hi", confidence=1.0)
    assert time_columns(row, [plain, plain], "segment", decoder) == {
        "segment_texts": ["hi", "hi"], "words": None, "timestamps_status": "ok"}
    assert time_columns(row, [plain], "none", decoder) == {}
