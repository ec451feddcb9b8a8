"""Error rows are counted by kind in ``_summary.json`` (``error_reasons``): the text before the
first colon or parenthesis, never cut mid-word."""

from pipeline.sinks.summary import REASON_CHARS, _reason


def test_kinds_drop_file_specific_details():
    assert _reason("undecodable audio (soundfile: Format not recognised; ffmpeg: Invalid data)") == \
        "undecodable audio"
    assert _reason("too long: 7200.0 s > --max-duration-seconds 3600") == "too long"
    assert _reason("piped command in wav.scp (recording rec3) is not supported; convert the audio "
                   "to files and list their paths") == "piped command in wav.scp"
    assert _reason("duplicate id") == "duplicate id"


def test_a_long_kind_is_cut_at_a_word_boundary():
    words = "word " * 60
    kind = _reason(words)
    assert kind.endswith(" …") and len(kind) <= REASON_CHARS + 2
    assert set(kind[:-2].split()) == {"word"}
