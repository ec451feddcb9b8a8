import pytest

from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.ids import (
    first_occurrences, parquet_row_id, relative_id, strip_extension, webdataset_split,
)
from pipeline.sources.items import file_item, mark_duplicates
from pipeline.sources.listing import detect_format
from pipeline.sources.manifest import manifest_items, read_manifest_rows
from pipeline.storage import Storage, join_uri, parent_uri


def test_relative_id_keeps_subfolders_and_drops_the_extension():
    assert relative_id("/data/in", "/data/in/sub/b3.flac") == "sub/b3"
    assert relative_id("bkt/in/", "bkt/in/a.b.wav") == "a.b"
    assert relative_id("/elsewhere", "/data/x.flac") == "x"
    assert strip_extension("noext") == "noext"


def test_parquet_row_id_and_webdataset_keys():
    assert parquet_row_id("s3://b/train-00001.parquet", 7) == "train-00001/7"
    assert webdataset_split("dir/utt1.flac") == ("dir/utt1", "flac")
    assert webdataset_split("utt1.seg.JSON") == ("utt1", "seg.json")


def test_duplicates_first_wins():
    assert first_occurrences(["a", "b", "a", "c", "b"]) == [True, True, False, True, False]
    items = mark_duplicates([file_item("x", "/1/x.flac"), file_item("x", "/2/x.flac")])
    assert [i["error"] for i in items] == [None, "duplicate id"]
    assert items[1]["source"] == "/2/x.flac"


def test_manifest_paths_resolve_against_the_manifest_folder():
    rows = read_manifest_rows('{"audio_filepath": "audio/a.flac", "text": "hi"}\n'
                              '{"audio_filepath": "/abs/b.wav", "id": "B"}\n\n', "jsonl")
    items = manifest_items(rows, "/data/m/manifest.jsonl", SourceColumns())
    assert [(i["id"], i["uri"], i["reference"]) for i in items] == [
        ("audio/a", "/data/m/audio/a.flac", "hi"), ("B", "/abs/b.wav", None)]
    s3_items = manifest_items(rows, "s3://bkt/m/manifest.jsonl", SourceColumns())
    assert s3_items[0]["uri"] == "s3://bkt/m/audio/a.flac"
    assert s3_items[0]["id"] == "audio/a"


def test_csv_manifest_with_path_column_and_missing_audio():
    rows = read_manifest_rows("path,text\nx.flac,one\n,two\n", "csv")
    items = manifest_items(rows, "/m/list.csv", SourceColumns())
    assert items[0]["id"] == "x" and items[0]["uri"] == "/m/x.flac"
    assert items[1]["error"] == "manifest row 2 has no 'path'"
    with pytest.raises(ConfigError, match="--audio-column"):
        manifest_items(rows, "/m/list.csv", SourceColumns(audio="wav"))


def test_format_detection():
    assert detect_format(["/d/a.flac", "/d/m.jsonl"], is_single_file=False) == "audio"
    assert detect_format(["/d/a.tar", "/d/b.flac"], is_single_file=False) == "webdataset"
    assert detect_format(["/d/x.parquet"], is_single_file=False) == "parquet"
    assert detect_format(["/d/m.csv"], is_single_file=True) == "manifest"
    with pytest.raises(ConfigError, match="--format"):
        detect_format(["/d/readme.md"], is_single_file=False)


def test_uri_helpers_and_storage_from_env():
    assert join_uri("s3://b/x", "y/z.flac") == "s3://b/x/y/z.flac"
    assert join_uri("s3://b/x", "/top.flac") == "s3://b/top.flac"
    assert join_uri("/local/x", "s3://o/k.flac") == "s3://o/k.flac"
    assert parent_uri("s3://b/x/m.jsonl") == "s3://b/x"
    env = {"AWS_ENDPOINT_URL": "http://e:1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    storage = Storage.from_env(None, env)
    assert storage.fsspec_options("s3") == {"endpoint_url": "http://e:1", "key": "k", "secret": "s"}
    assert Storage.from_env("http://flag:2", env).s3_endpoint == "http://flag:2"
    assert "s" not in repr(storage).replace("s3_", "").replace("Storage", "")
