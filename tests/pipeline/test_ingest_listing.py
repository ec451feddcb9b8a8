"""Listing on the driver: formats detected from file names, inputs split into index units, and
the ingestion flags reaching the configuration (no Ray, no file read)."""

from __future__ import annotations

import pytest

from jobs.transcribe import build_parser, config_from_args
from pipeline.config import ConfigError, SourceColumns
from pipeline.sources.listing import FILES_PER_UNIT, IndexUnit, list_input, plan_units
from pipeline.storage import Storage


def touch(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_librispeech_tree_one_unit_per_chapter_and_loose_audio_kept(tmp_path):
    root = tmp_path / "LibriSpeech" / "dev-clean"
    for chapter in ("84/121123", "84/121550"):
        speaker, number = chapter.split("/")
        touch(root / chapter / f"{speaker}-{number}.trans.txt")
        for utt in ("0000", "0001"):
            touch(root / chapter / f"{speaker}-{number}-{utt}.flac")
    touch(root / "stray" / "extra.flac")
    touch(root / "README.TXT")
    listing = list_input(str(root), "auto", Storage())
    assert listing.format == "librispeech"
    units = plan_units([listing])
    base = str(root)
    assert units == [
        IndexUnit("librispeech", (f"{base}/84/121123/84-121123.trans.txt",
                                  f"{base}/84/121123/84-121123-0000.flac",
                                  f"{base}/84/121123/84-121123-0001.flac"), base),
        IndexUnit("librispeech", (f"{base}/84/121550/84-121550.trans.txt",
                                  f"{base}/84/121550/84-121550-0000.flac",
                                  f"{base}/84/121550/84-121550-0001.flac"), base),
        IndexUnit("files", (f"{base}/stray/extra.flac",), base)]


def test_kaldi_data_dirs_one_unit_each(tmp_path):
    data = tmp_path / "data"
    for name in ("train", "test"):
        touch(data / name / "wav.scp")
        touch(data / name / "text")
    touch(data / "test" / "segments")
    touch(data / "lang" / "text")            # no wav.scp: not a data dir
    touch(data / "train" / "utt2spk")
    listing = list_input(str(data), "auto", Storage())
    assert listing.format == "kaldi"
    assert plan_units([listing]) == [
        IndexUnit("kaldi", (f"{data}/test/segments", f"{data}/test/text", f"{data}/test/wav.scp"),
                  f"{data}/test"),
        IndexUnit("kaldi", (f"{data}/train/text", f"{data}/train/wav.scp"), f"{data}/train")]
    with pytest.raises(ConfigError, match="holds no kaldi files"):
        list_input(str(tmp_path / "data" / "lang"), "kaldi", Storage())


def test_audio_folders_are_indexed_in_chunks_shards_one_unit_each(tmp_path):
    folder = tmp_path / "many"
    for i in range(FILES_PER_UNIT + 5):
        touch(folder / f"{i:05d}.wav", b"")
    units = plan_units([list_input(str(folder), "auto", Storage())])
    assert [(u.kind, len(u.uris), u.root) for u in units] == [
        ("files", FILES_PER_UNIT, str(folder)), ("files", 5, str(folder))]
    touch(tmp_path / "wds" / "b.tar")
    touch(tmp_path / "wds" / "a.tar")
    units = plan_units([list_input(str(tmp_path / "wds" / "*.tar"), "auto", Storage())])
    assert units == [IndexUnit("webdataset", (f"{tmp_path}/wds/a.tar",), f"{tmp_path}/wds"),
                     IndexUnit("webdataset", (f"{tmp_path}/wds/b.tar",), f"{tmp_path}/wds")]


def test_ingestion_flags_reach_the_config():
    args = build_parser().parse_args([
        "--input", "cv/test.tsv", "--output", "o", "--format", "manifest",
        "--audio-root", "s3://cv/clips", "--offset-column", "start", "--duration-column", "dur",
        "--audio-column", "path", "--text-column", "sentence", "--id-column", "client"])
    config = config_from_args(args)
    assert config.audio_root == "s3://cv/clips"
    assert config.columns == SourceColumns(audio="path", text="sentence", id="client",
                                           duration="dur", offset="start")
    assert config.settings()["columns"]["offset"] == "start"
    for fmt in ("librispeech", "kaldi"):
        assert config_from_args(build_parser().parse_args(
            ["--input", "x", "--output", "o", "--format", fmt])).format == fmt
