"""The index built inside Ray read tasks: ids, references, errors, duplicates, resume and the
evaluation filter, on small inputs each test builds (real local Ray, no model)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from pipeline.cluster import configure_ray_data
from pipeline.config import ConfigError, SourceColumns
from pipeline.run import items_dataset
from pipeline.sinks.output import existing_ids
from pipeline.sources.index import IndexSettings, build_index, remaining_ids
from pipeline.sources.listing import list_inputs, plan_units
from pipeline.storage import Storage
from tests.conftest import TINY_AUDIO
from tests.pipeline.corpus import (
    noise, write_hf_parquet, write_m4a, write_manifest_jsonl, write_sph, write_tar_members,
)

EMPTY = pa.array([], pa.string())


def index_rows(inputs, fmt="auto", columns=SourceColumns(), reference_filter=None, done=EMPTY):
    """(index, items as dicts sorted by source then id): what the decode stage receives."""
    configure_ray_data()
    storage = Storage.from_env()
    listings = list_inputs(tuple(str(i) for i in inputs), fmt, storage)
    index = build_index(plan_units(listings), IndexSettings(
        storage=storage, columns=columns, reference_filter=reference_filter))
    rows = items_dataset(index, done, storage).take_all()
    return index, sorted(rows, key=lambda r: (r["source"], r["id"]))


def flac_bytes(name: str) -> bytes:
    return (TINY_AUDIO / f"{name}.flac").read_bytes()


def test_timit_like_manifest_without_ids_gives_distinct_ids(ray_session, tmp_path):
    """Six files named SA1/SA2.WAV under different speakers, listed by absolute path from a
    manifest in another folder: ids keep the whole path, none collides."""
    paths = []
    for speaker in ("dr1/spk1", "dr1/spk2", "dr2/spk3"):
        folder = tmp_path / "data" / "timit" / speaker
        folder.mkdir(parents=True)
        for name in ("SA1", "SA2"):
            paths.append(write_sph(folder / f"{name}.WAV", np.zeros(1600, np.int16)))
    (tmp_path / "manifests").mkdir()
    manifest = write_manifest_jsonl(tmp_path / "manifests" / "timit.jsonl",
                                    [{"audio_filepath": str(p), "text": f"t{i}"}
                                     for i, p in enumerate(paths)])
    index, rows = index_rows([manifest])
    assert sorted(r["id"] for r in rows) == sorted(str(p)[:-len(".WAV")] for p in paths)
    assert len({r["id"] for r in rows}) == 6
    assert [r["error"] for r in rows] == [None] * 6
    assert (index.rows, len(index.duplicate_orders)) == (6, 0)


def test_webdataset_keys_dotted_names_and_a_second_audio_member(ray_session, tmp_path):
    a, b, c, d = (flac_bytes(n) for n in ("a01_short", "a02", "a03_twoblocks", "a04"))
    (tmp_path / "wds").mkdir()
    shard = write_tar_members(tmp_path / "wds" / "shard-000.tar", [
        ("spk1/utt.001.flac", a), ("spk1/utt.001.txt", b"first utterance"),
        ("spk1/utt.002.flac", b), ("spk1/utt.002.txt", b"second utterance"),
        ("podcast/Track 2.5 (Live).flac", c), ("podcast/Track 2.5 (Live).txt", b"live track\n"),
        ("k3.flac", d), ("k3.json", json.dumps({"text": "from json"}).encode()),
        ("k3.cls", b"7"),
    ])
    index, rows = index_rows([tmp_path / "wds"])
    got = {r["id"]: r for r in rows}
    assert sorted(got) == ["k3", "podcast/Track 2", "spk1/utt", "spk1/utt.002.flac"]
    assert [(got[k]["reference"], got[k]["error"]) for k in ("spk1/utt", "podcast/Track 2", "k3")] \
        == [("first utterance", None), ("live track", None), ("from json", None)]
    second = got["spk1/utt.002.flac"]
    assert second["error"] == ("second audio member 'spk1/utt.002.flac' of WebDataset key "
                               "'spk1/utt' (after 'spk1/utt.001.flac'; a key runs to the first "
                               "dot of the file name): give each utterance its own key")
    assert second["reference"] == "second utterance"
    assert second["source"] == f"{shard}#spk1/utt.002.flac"
    assert got["podcast/Track 2"]["source"] == f"{shard}#podcast/Track 2"
    data = shard.read_bytes()
    for key, audio in (("spk1/utt", a), ("podcast/Track 2", c), ("k3", d)):
        row = got[key]
        assert data[row["offset"]:row["offset"] + row["length"]] == audio, key
    assert index.rows == 4


def test_parquet_without_id_column_and_row_groups(ray_session, tmp_path):
    (tmp_path / "pq").mkdir()
    shard = write_hf_parquet(tmp_path / "pq" / "train-00007.parquet",
                             [(flac_bytes("a02"), "a02.flac")] * 5, ["t0", None, "t2", "", "t4"],
                             rows_per_group=2)
    index, rows = index_rows([tmp_path / "pq"])
    assert [r["id"] for r in rows] == [f"train-00007/{i}" for i in range(5)]
    assert [r["source"] for r in rows] == [f"{shard}#{i}" for i in range(5)]
    assert [r["reference"] for r in rows] == ["t0", None, "t2", None, "t4"]
    assert [(r["row_group"], r["row_in_group"]) for r in rows] == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert all(r["data"] == flac_bytes("a02") and r["error"] is None for r in rows)
    # a null id falls back to <shard stem>/<row>
    write_hf_parquet(tmp_path / "pq" / "train-00008.parquet", [(b"x", None)] * 3, [None] * 3,
                     ids=["x", None, "z"])
    _, rows = index_rows([tmp_path / "pq" / "train-00008.parquet"])
    assert [r["id"] for r in rows] == ["x", "train-00008/1", "z"]


def test_parquet_shards_of_one_name_in_split_folders_keep_their_folders(ray_session, tmp_path):
    """Hugging Face's converted layout (``default/train/0000.parquet``, ``default/test/0000.parquet``)
    as one input: the shards share a stem, so their derived ids keep the folder under the input
    and no train row is a ``duplicate id``; a shard with a name of its own keeps its stem."""
    ds = tmp_path / "ds"
    for split, count in (("train", 2), ("test", 1)):
        (ds / "default" / split).mkdir(parents=True)
        write_hf_parquet(ds / "default" / split / "0000.parquet",
                         [(flac_bytes("a02"), None)] * count, [f"{split}{i}" for i in range(count)])
    _, rows = index_rows([ds])
    assert [(r["id"], r["reference"], r["error"]) for r in rows] == [
        ("default/test/0000/0", "test0", None),
        ("default/train/0000/0", "train0", None), ("default/train/0000/1", "train1", None)]
    assert all(r["data"] == flac_bytes("a02") for r in rows)
    _, rows = index_rows([ds / "default" / "train"])      # one shard: ids as before
    assert [r["id"] for r in rows] == ["0000/0", "0000/1"]


def test_loose_librispeech_audio_of_two_inputs_never_shares_an_id(ray_session, tmp_path):
    """Two LibriSpeech trees each holding ``stray/extra.flac`` (audio outside any chapter with a
    transcript): as for an audio folder, its id starts at the inputs' common folder; the chapter
    ids are the data's own and stay as they are."""
    for split, speaker in (("dev-clean", "84"), ("test-clean", "61")):
        chapter = tmp_path / split / speaker / "100"
        chapter.mkdir(parents=True)
        (chapter / f"{speaker}-100.trans.txt").write_text(f"{speaker}-100-0000 HELLO\n")
        (chapter / f"{speaker}-100-0000.flac").write_bytes(flac_bytes("a02"))
        (tmp_path / split / "stray").mkdir()
        (tmp_path / split / "stray" / "extra.flac").write_bytes(flac_bytes("a04"))
    _, rows = index_rows([tmp_path / "dev-clean", tmp_path / "test-clean"])
    assert sorted((r["id"], r["reference"], r["error"]) for r in rows) == [
        ("61/100/61-100-0000", "HELLO", None), ("84/100/84-100-0000", "HELLO", None),
        ("dev-clean/stray/extra", None, None), ("test-clean/stray/extra", None, None)]


def test_each_parquet_row_group_read_once_across_decode_blocks(ray_session, tmp_path, monkeypatch):
    """A 150-row shard in one row group and a 60-row shard in three: the decode stage gets them
    as 16-row blocks (14 blocks), yet every row group's audio column is read exactly once, and a
    row group bigger than the memory budget is reported with its size."""
    import pyarrow.parquet as pq
    import ray

    from pipeline.run import index_items
    from pipeline.stages.fetch import prefetch_parquet

    (tmp_path / "pq").mkdir()
    cells = [(f"clip{i:04d}".encode() * 100, None) for i in range(210)]
    big = write_hf_parquet(tmp_path / "pq" / "big-0.parquet", cells[:150],
                           [f"t{i}" for i in range(150)], rows_per_group=1000)
    small = write_hf_parquet(tmp_path / "pq" / "small-0.parquet", cells[150:],
                             [f"t{i}" for i in range(150, 210)], rows_per_group=20)
    configure_ray_data()
    storage = Storage.from_env()
    listings = list_inputs((str(tmp_path / "pq"),), "auto", storage)
    index = build_index(plan_units(listings), IndexSettings(
        storage=storage, columns=SourceColumns(), group_budget_bytes=100_000))
    group = pq.ParquetFile(big).metadata.row_group(0)      # audio.bytes, audio.path, text
    big_size = group.column(0).total_uncompressed_size + group.column(1).total_uncompressed_size
    assert index.large_groups == ((f"{big} row group 0", big_size),) and big_size > 100_000
    assert index.largest_group_bytes == big_size      # what the fetch tasks' memory request covers

    reads: dict = {}
    real = pq.ParquetFile.read_row_group

    def counting(self, group, columns=None, **kwargs):
        if columns == ["audio"]:
            key = (self.metadata.num_rows, group)
            reads[key] = reads.get(key, 0) + 1
        return real(self, group, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    blocks = ray.get(index_items(index, EMPTY).to_arrow_refs())   # what the fetch tasks get
    fetched = [part for block in blocks for part in prefetch_parquet(block, storage=storage)]
    assert reads == {(150, 0): 1, (60, 0): 1, (60, 1): 1, (60, 2): 1}
    by_id = {r["id"]: r["data"] for part in fetched for r in part.to_pylist()}
    assert by_id == {**{f"big-0/{i}": cells[i][0] for i in range(150)},
                     **{f"small-0/{i}": cells[150 + i][0] for i in range(60)}}

    items = items_dataset(index, EMPTY, storage)       # through Ray: fetched, then cut
    sizes = [bundle.num_rows() for bundle in items.iter_internal_ref_bundles()]
    assert max(sizes) == 16 and sum(sizes) == 210 and len(sizes) >= 14
    rows = items.take_all()
    assert sorted(r["id"] for r in rows) == sorted(by_id)
    assert all(r["data"] == by_id[r["id"]] and r["error"] is None for r in rows)


def test_large_row_group_note():
    from pipeline.stages.row_groups import large_groups_note

    assert large_groups_note((), 10) is None
    note = large_groups_note((("s3://b/a.parquet row group 0", 1300 * 1024**2),
                              ("s3://b/b.parquet row group 2", 1500 * 1024**2)), 1024**3)
    assert note == ("2 Parquet row group(s) hold more audio than a decode task's memory budget (1024 MiB), "
                    "the largest s3://b/b.parquet row group 2 (1500 MiB) and 1 more; each is read "
                    "whole by one fetch task, which asks Ray for 8012 MiB (512 MiB + 5x the group): write the shards "
                    "with smaller row groups (pyarrow.parquet.write_table(..., row_group_size=100)) "
                    "to bound it")


def test_hf_parquet_null_bytes_read_the_file_at_path(ray_session, tmp_path):
    shards = tmp_path / "hf" / "data"
    (shards / "clips").mkdir(parents=True)
    (shards / "clips" / "rel.flac").write_bytes(flac_bytes("a04"))
    absolute = tmp_path / "elsewhere.flac"
    absolute.write_bytes(flac_bytes("a05"))
    shard = write_hf_parquet(shards / "test-0.parquet", [
        (flac_bytes("a02"), "a02.flac"), (None, str(absolute)), (None, "clips/rel.flac"),
        (None, None), (None, "clips/missing.flac")], ["a", "b", "c", "d", "e"], rows_per_group=3)
    _, rows = index_rows([shards])
    assert [r["id"] for r in rows] == [f"test-0/{i}" for i in range(5)]
    assert [r["data"] for r in rows[:3]] == [flac_bytes("a02"), flac_bytes("a05"),
                                              flac_bytes("a04")]
    assert [r["error"] for r in rows[:3]] == [None, None, None]
    assert rows[3]["error"] == f"no audio bytes and no audio path in {shard}#3"
    assert rows[4]["error"].startswith(f"cannot read {shard}#4: FileNotFoundError")
    assert rows[4]["data"] is None


def test_folder_lists_sph_m4a_and_every_audio_file(ray_session, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_sph(folder / "a.sph", (noise(0.5) * 32767).astype(np.int16))
    write_m4a(folder / "sub" / "b.m4a", noise(0.5))
    write_m4a(folder / "c.webm.mp4", noise(0.2))
    sf.write(folder / "d.aiff", noise(0.2), 16000, format="AIFF")
    (folder / "notes.txt").write_text("not audio")
    index, rows = index_rows([folder])
    assert [(r["id"], r["source"], r["error"]) for r in rows] == [
        ("a", str(folder / "a.sph"), None), ("c.webm", str(folder / "c.webm.mp4"), None),
        ("d", str(folder / "d.aiff"), None), ("sub/b", str(folder / "sub" / "b.m4a"), None)]
    assert index.dataset.num_blocks() == 1     # one index task for the folder, one block


def write_id_manifest(path: pathlib.Path, rows: list[tuple[str, str]]) -> pathlib.Path:
    return write_manifest_jsonl(path, [{"id": uid, "audio_filepath": str(TINY_AUDIO / f"{name}.flac")}
                                       for uid, name in rows])


def test_true_repeats_are_duplicate_rows_and_the_first_wins(ray_session, tmp_path):
    first = write_id_manifest(tmp_path / "m1.jsonl", [("u1", "a01_short"), ("u2", "a02"),
                                                      ("u3", "a03_twoblocks"), ("u3", "a04")])
    second = write_id_manifest(tmp_path / "m2.jsonl", [("u1", "a05"), ("u4", "a06_long")])
    index, rows = index_rows([first, second])
    got = sorted((r["id"], pathlib.Path(r["source"]).stem, r["error"]) for r in rows)
    assert got == [("u1", "a01_short", None), ("u1", "a05", "duplicate id"),
                   ("u2", "a02", None), ("u3", "a03_twoblocks", None),
                   ("u3", "a04", "duplicate id"), ("u4", "a06_long", None)]
    assert (index.rows, len(index.duplicate_orders)) == (6, 2)
    # the same inputs in the other order: the other u1 wins
    _, rows = index_rows([second, first])
    assert {(r["id"], pathlib.Path(r["source"]).stem) for r in rows if r["error"] is None} == {
        ("u1", "a05"), ("u4", "a06_long"), ("u2", "a02"), ("u3", "a03_twoblocks")}


def test_two_inputs_never_share_a_derived_id(ray_session, tmp_path):
    """Folders, manifests and Parquet shards of two inputs holding the same names: with several
    inputs derived ids start at their common folder; one input keeps its ids as before."""
    for folder, clip in (("a", "a02"), ("b", "a04"), ("c", "a05"), ("d", "a06_long")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / ("0000.flac" if folder in "ab" else "x.flac")).write_bytes(
            flac_bytes(clip))
    for folder in "cd":
        write_manifest_jsonl(tmp_path / folder / "m.jsonl", [{"audio_filepath": "x.flac"}])
    for folder in "ef":
        (tmp_path / folder).mkdir()
        write_hf_parquet(tmp_path / folder / "train-0.parquet", [(flac_bytes("a02"), None)],
                         [folder])
    inputs = [tmp_path / "a", tmp_path / "b", tmp_path / "c" / "m.jsonl",
              tmp_path / "d" / "m.jsonl", tmp_path / "e", tmp_path / "f"]
    _, rows = index_rows(inputs)
    assert sorted((r["id"], r["error"]) for r in rows) == [
        (uid, None) for uid in ("a/0000", "b/0000", "c/x", "d/x", "e/train-0/0", "f/train-0/0")]
    assert {r["id"]: r["source"] for r in rows}["b/0000"] == str(tmp_path / "b" / "0000.flac")
    # one input keeps its ids (manifests and Parquet: test_corpora_layouts, the Parquet tests)
    assert [r["id"] for r in index_rows([tmp_path / "a"])[1]] == ["0000"]


def test_resume_on_arrow_ids_skips_what_the_output_holds(ray_session, tmp_path):
    manifest = write_id_manifest(tmp_path / "m.jsonl", [("u1", "a01_short"), ("u2", "a02"),
                                                        ("u3", "a04"), ("u1", "a05")])
    out = tmp_path / "out"
    out.mkdir()
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"id": ["u1", "old"]}), out / "part-0.parquet")
    (out / "_summary.json").write_text("{}")
    done = existing_ids(Storage.from_env(), str(out))
    assert isinstance(done, pa.Array) and done.to_pylist() == ["u1", "old"]
    index, rows = index_rows([manifest], done=done)
    assert remaining_ids(index.ids, done).to_pylist() == ["u2", "u3"]
    assert sorted((r["id"], r["error"]) for r in rows) == [("u2", None), ("u3", None)]


def test_reference_filter_drops_unscorable_rows_before_decoding(ray_session, tmp_path):
    audio = str(TINY_AUDIO / "a02.flac")
    manifest = write_manifest_jsonl(tmp_path / "refs.jsonl", [
        {"id": "ok", "audio_filepath": audio, "text": "Hello world"},
        {"id": "empty", "audio_filepath": audio, "text": ""},
        {"id": "marker", "audio_filepath": audio, "text": "ignore time segment in scoring"},
        {"id": "none", "audio_filepath": audio},
        {"id": "blank", "audio_filepath": audio, "text": "   "},
        {"id": "ok2", "audio_filepath": audio, "text": "again"}])
    index, rows = index_rows([manifest], reference_filter="english")
    assert sorted(r["id"] for r in rows) == ["ok", "ok2"]
    assert (index.rows, index.dropped_unscorable, len(index.ids)) == (6, 4, 2)
    index, rows = index_rows([manifest])
    assert (len(rows), index.dropped_unscorable) == (6, 0)


def test_a_mistake_inside_an_index_task_is_one_config_error(ray_session, tmp_path):
    manifest = write_manifest_jsonl(tmp_path / "bad.jsonl", [{"file": "x.flac", "text": "t"}])
    with pytest.raises(ConfigError) as caught:
        index_rows([manifest])
    message = str(caught.value)
    assert "\n" not in message and "--audio-column" in message and "bad.jsonl" in message
