"""LibriSpeech chapters (pure, no Ray): references by UTTID, missing audio, audio without a line."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError
from pipeline.sources.items import ITEM_SCHEMA
from pipeline.sources.librispeech import MISSING_AUDIO, librispeech_table

ROOT = "/data/LibriSpeech/test-clean"
CHAPTER = f"{ROOT}/1089/134686"
TRANS = f"{CHAPTER}/1089-134686.trans.txt"


def test_chapter_references_missing_audio_and_audio_without_a_line():
    trans = (b"1089-134686-0000 HE HOPED THERE WOULD BE STEW FOR DINNER\n"
             b"1089-134686-0001 STUFF IT INTO YOU  HIS BELLY COUNSELLED HIM\r\n"
             b"\n"
             b"1089-134686-0002 AFTER EARLY NIGHTFALL\n"
             b"1089-134686-0003\n")
    audio = [f"{CHAPTER}/1089-134686-0000.flac", f"{CHAPTER}/1089-134686-0001.flac",
             f"{CHAPTER}/1089-134686-0003.flac", f"{CHAPTER}/1089-134686-0009.flac"]
    table = librispeech_table(TRANS, trans, audio, ROOT)
    assert table.schema == ITEM_SCHEMA
    got = table.to_pylist()
    assert [(r["id"], r["uri"], r["reference"], r["error"]) for r in got] == [
        ("1089/134686/1089-134686-0000", audio[0], "HE HOPED THERE WOULD BE STEW FOR DINNER", None),
        ("1089/134686/1089-134686-0001", audio[1], "STUFF IT INTO YOU  HIS BELLY COUNSELLED HIM", None),
        ("1089/134686/1089-134686-0003", audio[2], "", None),
        ("1089/134686/1089-134686-0009", audio[3], None, None),
        ("1089/134686/1089-134686-0002", TRANS, "AFTER EARLY NIGHTFALL", MISSING_AUDIO)]
    assert [r["source"] for r in got[:4]] == audio
    assert {(r["offset"], r["start_s"], r["end_s"]) for r in got} == {(-1, None, None)}


def test_s3_chapter_with_bom_and_a_repeated_line():
    root = "s3://bkt/LibriSpeech/dev-clean"
    chapter = f"{root}/84/121123"
    trans = "\ufeff84-121123-0000 GO DO YOU HEAR\n84-121123-0000 AGAIN\n".encode()
    got = librispeech_table(f"{chapter}/84-121123.trans.txt", trans, [f"{chapter}/84-121123-0000.flac"],
                            root).to_pylist()
    assert [(r["id"], r["reference"], r["error"]) for r in got] == [
        ("84/121123/84-121123-0000", "GO DO YOU HEAR", None),
        ("84/121123/84-121123-0000", None, "repeated transcript line for 84-121123-0000 in 84-121123.trans.txt")]


def test_transcript_not_utf8_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"^LibriSpeech transcript file .*trans.txt is not UTF-8"):
        librispeech_table(TRANS, "1089-134686-0000 CAF\xc9\n".encode("latin-1"), [], ROOT)
