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


def test_kinds_never_split_on_row_numbers_drive_colons_or_paths():
    rows = {_reason(f"manifest row {n}: offset 'x{n}' is not a number") for n in range(6)}
    assert rows == {"offset … is not a number"}
    assert {_reason(f"cannot read {p}: FileNotFoundError: {p}")
            for p in (r"C:\data\a.wav", "/data/b.wav", "s3://bkt/c.wav")} == {"cannot read …"}
    assert _reason("span 1-2 s is past the end of the audio (0.500 s)") == \
        "span 1-2 s is past the end of the audio"
