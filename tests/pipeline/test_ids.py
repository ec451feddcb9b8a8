import pytest

from pipeline.config import ConfigError, SourceColumns
import pyarrow as pa

from pipeline.sources.formats import detect_format
from pipeline.sources.ids import (
    first_seen, relative_id, shard_prefixes, strip_extension, webdataset_split,
)
from pipeline.sources.manifest import manifest_items, read_manifest_rows
from pipeline.storage import Storage, join_uri, parent_uri


def test_relative_id_keeps_subfolders_and_drops_the_extension():
    assert relative_id("/data/in", "/data/in/sub/b3.flac") == "sub/b3"
    assert relative_id("bkt/in/", "bkt/in/a.b.wav") == "a.b"
    # outside the root: the whole path, so that dr1/spk1/SA1 and dr1/spk2/SA1 stay apart
    assert relative_id("/elsewhere", "/data/x.flac") == "/data/x"
    assert strip_extension("noext") == "noext"


def test_shard_prefixes_keep_stems_unless_two_shards_share_one():
    root = "s3://b/ds"
    distinct = [f"{root}/data/train-0000{i}.parquet" for i in range(2)]
    assert shard_prefixes(root, distinct) == {distinct[0]: "train-00000", distinct[1]: "train-00001"}
    # Hugging Face's converted layout: the same file name in two split folders
    split = [f"{root}/default/test/0000.parquet", f"{root}/default/train/0000.parquet"]
    assert shard_prefixes(root, split) == {split[0]: "default/test/0000",
                                           split[1]: "default/train/0000"}
    # stems equal in one folder (the first dot ends a stem): the whole name without extension
    dotted = [f"{root}/a.x.parquet", f"{root}/a.y.parquet"]
    assert shard_prefixes(root, dotted) == {dotted[0]: "a.x", dotted[1]: "a.y"}
    # several inputs (root: their common folder): the folder is always kept
    assert shard_prefixes("s3://b", [distinct[0]], keep_folders=True) == {
        distinct[0]: "ds/data/train-00000"}


def test_common_root_is_empty_without_a_shared_folder():
    from pipeline.sources.listing import common_root

    assert common_root(["s3://a/x", "s3://b/y"]) == ""
    assert common_root(["s3://bkt/a", "s3://bkt/b/c"]) == "s3://bkt"
    assert common_root(["/data/a", "s3://data/a"]) == ""
    assert common_root(["/data/a", "/data/b"]) == "/data"
    # ids of such inputs are then whole paths (README, "Ids")
    assert relative_id(common_root(["s3://a/x", "s3://b/y"]) or "/", "s3://a/x/f.flac") == "s3://a/x/f"


def test_webdataset_keys():
    assert webdataset_split("dir/utt1.flac") == ("dir/utt1", "flac")
    assert webdataset_split("utt1.seg.JSON") == ("utt1", "seg.json")
    assert webdataset_split("spk1/utt.002.flac") == ("spk1/utt", "002.flac")
    assert webdataset_split("podcast/Track 2.5 (Live).flac") == ("podcast/Track 2", "5 (live).flac")


def test_duplicates_first_wins_by_input_order_not_by_position():
    ids = pa.array(["a", "b", "a", "c", "b"])
    assert first_seen(ids, pa.array([0, 1, 2, 3, 4])).to_pylist() == [True, True, False, True, False]
    # rows arrive in any order from Ray: the smallest input order wins
    assert first_seen(ids, pa.array([9, 1, 2, 3, 0])).to_pylist() == [False, False, True, True, True]


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
    # a manifest beside the audio describes the folder; a sidecar of one audio file does not
    assert detect_format(["/d/a.flac", "/d/m.jsonl"], is_single_file=False) == "manifest"
    assert detect_format(["/d/a.flac", "/d/a.json"], is_single_file=False) == "audio"
    assert detect_format(["/d/a.tar", "/d/b.flac"], is_single_file=False) == "webdataset"
    assert detect_format(["/d/x.parquet"], is_single_file=False) == "parquet"
    assert detect_format(["/d/m.csv"], is_single_file=True) == "manifest"
    assert detect_format(["/d/a.sph", "/d/b.m4a"], is_single_file=False) == "audio"
    assert detect_format(["/ls/84/121/84-121.trans.txt", "/ls/84/121/84-121-0000.flac"],
                         is_single_file=False) == "librispeech"
    assert detect_format(["/k/train/wav.scp", "/k/train/text", "/k/a.wav"],
                         is_single_file=False) == "kaldi"
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
