"""Manifest conventions (pure, no Ray): NeMo spans, ids, BOM, CSV/TSV quoting, --audio-root."""

from __future__ import annotations

import json

import pytest

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.items import ITEM_SCHEMA
from pipeline.sources.ids import strip_extension
from pipeline.sources.conventions import drop_extension, format_seconds, path_id, resolve_audio
from pipeline.sources.manifest import manifest_table
from pipeline.storage import join_uri

COLS = SourceColumns()


def rows(data: bytes | str, uri: str, columns: SourceColumns = COLS, audio_root=None) -> list[dict]:
    data = data.encode("utf-8") if isinstance(data, str) else data
    table = manifest_table(data, uri, columns, audio_root)
    assert table.schema == ITEM_SCHEMA
    return table.to_pylist()


def jsonl(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_nemo_segments_of_one_file_get_distinct_ids_and_exact_spans():
    text = jsonl(*({"audio_filepath": "audio/long.wav", "offset": s, "duration": 4.0, "text": t}
                   for s, t in ((0, "one"), (4.0, "two"), (8, "three"))))
    got = rows(text, "/data/nemo/train.json")
    assert [(r["id"], r["uri"], r["start_s"], r["end_s"], r["reference"], r["error"]) for r in got] == [
        ("audio/long@0-4", "/data/nemo/audio/long.wav", 0.0, 4.0, "one", None),
        ("audio/long@4-8", "/data/nemo/audio/long.wav", 4.0, 8.0, "two", None),
        ("audio/long@8-12", "/data/nemo/audio/long.wav", 8.0, 12.0, "three", None)]
    assert {r["source"] for r in got} == {"/data/nemo/audio/long.wav"}
    assert {r["offset"] for r in got} == {-1}


def test_fractional_spans_and_offset_without_duration_and_duration_alone():
    text = jsonl({"audio_filepath": "a.flac", "offset": "1.25", "duration": "0.5"},
                 {"audio_filepath": "a.flac", "offset": 3.5},
                 {"audio_filepath": "a.flac", "duration": 3.2},
                 {"audio_filepath": "b.flac", "offset": None, "duration": 2})
    got = rows(text, "s3://bkt/m/list.jsonl")
    assert [(r["id"], r["uri"], r["start_s"], r["end_s"]) for r in got] == [
        ("a@1.25-1.75", "s3://bkt/m/a.flac", 1.25, 1.75),
        ("a@3.5-end", "s3://bkt/m/a.flac", 3.5, None),
        ("a", "s3://bkt/m/a.flac", None, None),           # duration alone is metadata
        ("b", "s3://bkt/m/b.flac", None, None)]


def test_id_column_wins_and_spans_keep_it():
    text = jsonl({"id": "u1", "audio_filepath": "x.wav", "offset": 0, "duration": 4},
                 {"id": 7, "audio_filepath": "x.wav", "offset": 4, "duration": 4},
                 {"id": "", "audio_filepath": "x.wav"})
    got = rows(text, "/m/list.jsonl")
    assert [(r["id"], r["start_s"], r["end_s"]) for r in got] == [
        ("u1", 0.0, 4.0), ("7", 4.0, 8.0), ("x", None, None)]


def test_timit_absolute_paths_outside_the_manifest_folder_keep_whole_paths():
    paths = [f"/data/timit/dr1/{spk}/{utt}.WAV" for spk in ("spk1", "spk2") for utt in ("SA1", "SA2", "SX3")]
    got = rows(jsonl(*({"audio_filepath": p, "text": "t"} for p in paths)), "/data/manifests/test.jsonl")
    assert [r["id"] for r in got] == [p[:-4] for p in paths]
    assert len({r["id"] for r in got}) == 6
    assert [r["uri"] for r in got] == paths


def test_relative_paths_leaving_the_folder_and_s3_uris():
    text = jsonl({"audio_filepath": "../audio/a.wav"}, {"audio_filepath": "s3://other/x/b.mp3"},
                 {"audio_filepath": "sub/c.d.flac"})
    got = rows(text, "s3://bkt/corpus/manifests/m.jsonl")
    assert [(r["id"], r["uri"]) for r in got] == [
        ("s3://bkt/corpus/audio/a", "s3://bkt/corpus/audio/a.wav"),
        ("s3://other/x/b", "s3://other/x/b.mp3"),
        ("sub/c.d", "s3://bkt/corpus/manifests/sub/c.d.flac")]


def test_jsonl_with_bom_reads_and_ids_come_from_the_id_column():
    data = "\ufeff".encode() + jsonl({"id": "A1", "audio_filepath": "a.wav", "text": "hello"},
                                     {"id": "B2", "audio_filepath": "b.wav", "text": "world"}).encode()
    got = rows(data, "/m/win.jsonl")
    assert [(r["id"], r["reference"], r["error"]) for r in got] == [
        ("A1", "hello", None), ("B2", "world", None)]


def test_csv_with_bom_keeps_the_id_column_and_normal_quoting():
    data = b'\xef\xbb\xbfid,audio_filepath,text\r\nA1,a.wav,"hello, ""world"""\r\nB2,b.wav,"two\nlines"\r\n'
    got = rows(data, "/m/excel.csv")
    assert [(r["id"], r["uri"], r["reference"]) for r in got] == [
        ("A1", "/m/a.wav", 'hello, "world"'), ("B2", "/m/b.wav", "two\nlines")]


def test_common_voice_tsv_unbalanced_quote_and_audio_root():
    header = "client_id\tpath\tsentence_id\tsentence\tup_votes\tdown_votes\n"
    lines = ['c1\tcommon_voice_en_1.mp3\ts1\tHe said "stop.\t2\t0\n',
             "c2\tcommon_voice_en_2.mp3\ts2\tThe next row.\t2\t0\n",
             'c3\tcommon_voice_en_3.mp3\ts3\t"Quoted" fully\t3\t1\n']
    data = (header + "".join(lines)).encode()
    got = rows(data, "/cv/en/test.tsv", audio_root="/cv/en/clips")
    assert len(got) == 3
    assert [(r["id"], r["uri"], r["reference"]) for r in got] == [
        ("clips/common_voice_en_1", "/cv/en/clips/common_voice_en_1.mp3", 'He said "stop.'),
        ("clips/common_voice_en_2", "/cv/en/clips/common_voice_en_2.mp3", "The next row."),
        ("clips/common_voice_en_3", "/cv/en/clips/common_voice_en_3.mp3", '"Quoted" fully')]
    named = rows(data, "/cv/en/test.tsv", SourceColumns(audio="path", text="sentence"), "/cv/en/clips")
    assert [r["reference"] for r in named] == [r["reference"] for r in got]
    elsewhere = rows(data, "s3://cv/en/test.tsv", audio_root="s3://audio/clips/")
    assert elsewhere[1]["id"] == "s3://audio/clips/common_voice_en_2"
    assert elsewhere[1]["uri"] == "s3://audio/clips/common_voice_en_2.mp3"


def test_bad_rows_become_error_rows_and_the_rest_goes_on():
    text = ('{"audio_filepath": "a.wav", "text": "ok"}\n'
            "not json at all\n"
            "\n"
            '{"text": "no audio"}\n'
            '{"id": "k", "audio_filepath": "b.wav", "offset": "abc", "duration": 2}\n'
            '{"audio_filepath": "c.wav", "offset": -1, "duration": 2}\n'
            '{"audio_filepath": "c.wav", "offset": 1, "duration": 0}\n'
            '[1, 2]\n'
            '{"audio_filepath": 5}\n'
            '{"audio_filepath": "d.wav"}\n')
    got = rows(text, "/m/bad.jsonl")
    assert [(r["id"], r["error"]) for r in got] == [
        ("a", None),
        ("/m/bad.jsonl:2", "manifest row 2: not JSON (Expecting value at column 1)"),
        ("/m/bad.jsonl:4", "manifest row 3 has no 'audio_filepath'"),
        ("k", "manifest row 4: offset 'abc' is not a number"),
        ("/m/bad.jsonl:6", "manifest row 5: offset -1 is negative"),
        ("/m/bad.jsonl:7", "manifest row 6: duration 0 is not positive"),
        ("/m/bad.jsonl:8", "manifest row 7: not a JSON object"),
        ("/m/bad.jsonl:9", "manifest row 8: 'audio_filepath' is not a path (int)"),
        ("d", None)]
    assert got[2]["reference"] == "no audio"
    assert got[3]["uri"] == "/m/b.wav"


def test_csv_error_rows_name_their_line():
    got = rows("path,text\nx.flac,one\n,two\ny.flac,three\nz.flac,four,five\nw.flac\nv.flac,six,\n",
               "/m/list.csv")
    assert [(r["id"], r["reference"], r["error"]) for r in got] == [
        ("x", "one", None), ("/m/list.csv:3", "two", "manifest row 2 has no 'path'"),
        ("y", "three", None),
        ("/m/list.csv:5", None, "manifest row 4: 3 fields but the header has 2 (an unquoted delimiter?)"),
        ("w", None, None), ("v", "six", None)]


def test_csv_quote_never_closed_or_text_after_a_quote_costs_only_its_own_row():
    data = ('id,path,text\r\n'
            'a,a.wav,"he said\r\n'
            'b,b.wav,fine\r\n'
            'c,c.wav,"x" y\r\n'
            'd,d.wav,"two\r\nlines"\r\n'
            'e,e.wav,"open\r\n')
    got = rows(data, "/m/q.csv")
    assert [(r["id"], r["reference"], r["error"]) for r in got] == [
        # the quote opened on line 2 closes on line 4, where text follows it: line 2 is the bad row
        ("/m/q.csv:2", None, "manifest row 1: not valid CSV (',' expected after '\"')"),
        ("b", "fine", None),
        ("/m/q.csv:4", None, "manifest row 3: not valid CSV (',' expected after '\"')"),
        ("d", "two\r\nlines", None),
        ("/m/q.csv:7", None, "manifest row 5: not valid CSV (unexpected end of data)")]


def test_whole_manifest_mistakes_are_one_clear_error():
    with pytest.raises(ConfigError, match=r"^manifest /m/l1.jsonl is not UTF-8 text \(byte 0xe9 at offset 40\)"):
        manifest_table('{"audio_filepath": "a.wav", "text": "caf\xe9"}\n'.encode("latin-1"),
                       "/m/l1.jsonl", COLS)
    with pytest.raises(ConfigError, match="has no column 'wav'.*fix --audio-column"):
        manifest_table(b"path,text\nx.flac,one\n", "/m/list.csv", SourceColumns(audio="wav"))
    with pytest.raises(ConfigError, match="none of the audio columns"):
        manifest_table(b"file,text\nx.flac,one\n", "/m/list.csv", COLS)
    with pytest.raises(ConfigError, match="has no column 'transcript'.*fix --text-column"):
        manifest_table(b"path,text\nx.flac,one\n", "/m/list.csv", SourceColumns(text="transcript"))


def test_empty_manifest_and_no_text_column():
    assert manifest_table(b"", "/m/e.jsonl", COLS).num_rows == 0
    assert manifest_table(b"path,text\n", "/m/e.csv", COLS).num_rows == 0
    got = rows("audio\nz.ogg\n", "/m/noref.csv")
    assert [(r["id"], r["reference"]) for r in got] == [("z", None)]


def test_json_array_file_and_unicode_line_separator_inside_strings():
    arr = json.dumps([{"audio_filepath": "a.wav", "text": "x"}, {"audio_filepath": "b.wav"}])
    assert [r["id"] for r in rows(arr, "/m/arr.json")] == ["a", "b"]
    text = '{"audio_filepath": "c.wav", "text": "one\u2028two"}\n'
    assert [(r["id"], r["reference"]) for r in rows(text, "/m/ls.jsonl")] == [("c", "one\u2028two")]


def test_helpers():
    assert [format_seconds(x) for x in (0, 4.0, 1.25, 0.1 + 0.2, 12345.678)] == [
        "0", "4", "1.25", "0.3", "12345.678"]
    assert path_id("/m", "/m/a/b.wav") == "a/b"
    assert path_id("/m", "/mm/b.wav") == "/mm/b"
    names = ["a.b.wav", ".hidden", "..a", "..a.b", "a.", "dir.x/file", "s3://b/x.y/z.flac", "..."]
    assert [drop_extension(n) for n in names] == [strip_extension(n) for n in names] == [
        "a.b", ".hidden", "..a", "..a", "a", "dir.x/file", "s3://b/x.y/z", "..."]
    for audio in ("a/b.wav", "./a.wav", "x/../a.wav", "/abs/a.wav", "s3://o/a.wav", "a//b.wav"):
        assert resolve_audio("/m/", audio) == join_uri("/m", audio)
        assert resolve_audio("s3://bkt/m/", audio) == join_uri("s3://bkt/m", audio)
