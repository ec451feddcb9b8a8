"""Two different files never share a derived id, even when they differ only by extension; a truly
repeated input keeps its id (and is marked ``duplicate id`` later)."""

from __future__ import annotations

from pipeline.config import SourceColumns
from pipeline.sources.index import unit_tables
from pipeline.sources.listing import FILES_PER_UNIT, IndexUnit, _file_units
from pipeline.sources.manifest import manifest_table


def test_manifest_segments_of_one_recording_in_two_codecs():
    rows = [("long.wav", 0, 4), ("long.wav", 4, 4), ("long.mp3", 0, 4), ("long.m4a", 0, 4),
            ("long.wav", 0, 4), ("other.flac", None, None)]
    text = "".join(
        '{"audio_filepath": "%s"%s}\n' % (a, "" if o is None else f', "offset": {o}, "duration": {d}')
        for a, o, d in rows)
    table = manifest_table(text.encode(), "/data/m/segs.jsonl", SourceColumns())
    assert table["id"].to_pylist() == ["long.wav@0-4", "long@4-8", "long.mp3@0-4",
                                       "long.m4a@0-4", "long.wav@0-4", "other"]


def test_manifest_ids_from_the_id_column_are_left_alone():
    text = b'{"id": "u1", "audio_filepath": "x.m4a"}\n{"id": "u1", "audio_filepath": "x.mp4"}\n'
    table = manifest_table(text, "/data/m/ids.jsonl", SourceColumns())
    assert table["id"].to_pylist() == ["u1", "u1"]     # a repeat the source states: duplicate id


def test_folder_files_that_differ_by_extension():
    unit = IndexUnit("files", ("/r/a/x.m4a", "/r/a/x.mp4", "/r/a/y.flac", "/r/b/x.flac"), "/r")
    [table] = unit_tables(unit, None)
    assert table["id"].to_pylist() == ["a/x.m4a", "a/x.mp4", "a/y", "b/x"]


def test_a_unit_boundary_never_splits_files_of_one_stem():
    files = [f"/r/{i:05d}.flac" for i in range(FILES_PER_UNIT - 1)] + ["/r/x.m4a", "/r/x.mp4", "/r/z.flac"]
    units = _file_units(files, "/r")
    assert [len(u.uris) for u in units] == [FILES_PER_UNIT + 1, 1]
    assert units[0].uris[-2:] == ("/r/x.m4a", "/r/x.mp4")
