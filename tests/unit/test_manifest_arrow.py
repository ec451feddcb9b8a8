"""The column-wise manifest reader gives exactly the row-by-row reader's items (pure, no Ray)."""

from __future__ import annotations

import json
import random

import pytest

from pipeline.config import SourceColumns
from pipeline.sources import manifest as m
from pipeline.sources.manifest_arrow import arrow_manifest_table

COLS = SourceColumns()


def fast(data: bytes, uri: str, columns=COLS, audio_root=None, header=None):
    kind = uri.rsplit(".", 1)[-1]
    return arrow_manifest_table(data, kind, header,
                                lambda names: m._plan(names, uri, columns, audio_root))


def slow(data: bytes, uri: str, columns=COLS, audio_root=None):
    return m.rowwise_manifest_table(data.decode("utf-8-sig"), uri, columns, audio_root)


CLEAN_JSONL = "".join(json.dumps(o) + "\n" for o in [
    {"audio_filepath": "long.wav", "offset": 0, "duration": 4, "text": "one"},
    {"audio_filepath": "long.wav", "offset": 4.5, "duration": 3.25, "text": ""},
    {"audio_filepath": "long.wav", "offset": 8},
    {"audio_filepath": "sub/a.b.flac", "duration": 1.5, "id": ""},
    {"audio_filepath": "/data/timit/dr1/spk1/SA1.WAV", "id": "17"},
    {"audio_filepath": "../up/x.mp3", "id": "  given  "},
    {"audio_filepath": "./here/.hidden", "text": "é ü"},
    {"audio_filepath": "s3://other/k/y.opus"},
    {"audio_filepath": "dir.x/ümlaut name.m4a", "offset": None, "duration": None},
])


@pytest.mark.parametrize("uri,root", [("/data/m/list.jsonl", None), ("s3://bkt/m/list.json", None),
                                      ("/data/m/list.jsonl", "/data/clips/"),
                                      ("/data/m/list.jsonl", "s3://bkt/clips")])
def test_clean_jsonl_fast_equals_rows(uri, root):
    data = CLEAN_JSONL.encode()
    got = fast(data, uri, audio_root=root)
    assert got is not None
    assert got.to_pylist() == slow(data, uri, audio_root=root).to_pylist()
    assert m.manifest_table(b"\xef\xbb\xbf" + data, uri, COLS, root).to_pylist() == got.to_pylist()


def test_integer_ids_fast_equals_rows():
    data = b'{"id": 1, "audio": "a.wav"}\n{"id": 20, "audio": "b.wav", "offset": 1, "duration": 2}\n'
    got = fast(data, "/m/ints.jsonl")
    assert got is not None and got.to_pylist() == slow(data, "/m/ints.jsonl").to_pylist()
    assert [(r["id"], r["start_s"], r["end_s"]) for r in got.to_pylist()] == [("1", None, None), ("20", 1.0, 3.0)]


def test_clean_tsv_and_csv_fast_equals_rows():
    tsv = ("client_id\tpath\tsentence\toffset\tduration\n"
           'c1\tcv_1.mp3\tHe said "stop.\t\t\n'
           "c2\tcv_2.mp3\tNext.\t1.5\t2\n"
           "c3\t/abs/cv_3.mp3\t\t0\t\n").encode()
    header = ["client_id", "path", "sentence", "offset", "duration"]
    got = fast(tsv, "/cv/en/test.tsv", audio_root="/cv/en/clips", header=header)
    assert got is not None
    assert got.to_pylist() == slow(tsv, "/cv/en/test.tsv", audio_root="/cv/en/clips").to_pylist()
    assert [r["id"] for r in got.to_pylist()] == ["clips/cv_1", "clips/cv_2@1.5-3.5", "/abs/cv_3@0-end"]
    csv = b" id ,audio,text\r\n0001,a.wav,x\r\n,b.wav,\r\n"
    got = fast(csv, "/m/l.csv", header=[" id ", "audio", "text"])
    assert got is not None and got.to_pylist() == slow(csv, "/m/l.csv").to_pylist()
    assert [r["id"] for r in got.to_pylist()] == ["0001", "b"]


@pytest.mark.parametrize("data,uri", [
    (b'{"audio_filepath": "a.wav"}\nnot json\n', "/m/l.jsonl"),          # a bad line
    (b'{"audio_filepath": "a.wav", "offset": -1}\n', "/m/l.jsonl"),      # a negative offset
    (b'{"audio_filepath": "a.wav", "offset": 1, "duration": 0}\n', "/m/l.jsonl"),
    (b'{"audio_filepath": "a.wav", "offset": "x"}\n', "/m/l.jsonl"),
    (b'{"audio_filepath": ""}\n', "/m/l.jsonl"),                         # no audio path
    (b'{"audio_filepath": 5}\n', "/m/l.jsonl"),
    (b'{"audio_filepath": "a.wav", "id": true}\n', "/m/l.jsonl"),
    (b'{"audio_filepath": "a.wav", "text": "2020-01-01"}\n', "/m/l.jsonl"),  # inferred timestamp
    (b'[{"audio_filepath": "a.wav"}]', "/m/l.json"),
    (b'{"audio_filepath": "a.wav", "id": "x"}\n{"audio_filepath": "b.wav", "id": 2}\n', "/m/l.jsonl"),
])
def test_anything_unusual_goes_to_the_row_reader(data, uri):
    assert fast(data, uri) is None
    assert m.manifest_table(data, uri, COLS).to_pylist() == slow(data, uri).to_pylist()


def test_random_manifests_agree():
    rng = random.Random(7)
    parts = ["a", "b.c", "..", ".", "x.wav", "d", "é", " ", "s3:", ""]
    went_fast = 0
    for _ in range(200):
        rows = []
        for _ in range(rng.randint(1, 8)):
            path = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
            row = {"audio_filepath": rng.choice([path, "/" + path, path + ".flac"])}
            if rng.random() < 0.5:
                row["offset"] = rng.choice([0, 1, 2.5, 0.1 + 0.2, None, -1])
                row["duration"] = rng.choice([1, 0.75, None, 1e-7, 0])
            if rng.random() < 0.3:
                row["id"] = rng.choice(["u", "", " v ", 3])
            rows.append(row)
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        uri = rng.choice(["/data/m/l.jsonl", "s3://b/m/l.jsonl", "/l.jsonl"])
        assert m.manifest_table(data, uri, COLS).to_pylist() == slow(data, uri).to_pylist(), data
        went_fast += fast(data, uri) is not None
    assert went_fast >= 20, went_fast
