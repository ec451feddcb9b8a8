"""Kaldi data dirs (pure, no Ray): wav.scp, text, segments, piped entries, text without audio."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError
from pipeline.sources.items import ITEM_SCHEMA
from pipeline.sources.kaldi import kaldi_table

DATA = "/exp/s5/data/test"
PIPED = "piped command in wav.scp (recording rec3) is not supported; convert the audio to files and list their paths"


def table(files: dict[str, str], data_dir: str = DATA, audio_root=None) -> list[dict]:
    t = kaldi_table(data_dir, {k: v.encode() for k, v in files.items()}, audio_root)
    assert t.schema == ITEM_SCHEMA
    return t.to_pylist()


WAV_SCP = ("rec1 /corpus/wav/rec1.wav\n"
           "rec2 wav/rec2.flac\n"
           "rec3 sph2pipe -f wav -p -c 1 /corpus/sph/rec3.sph |\n")


def test_without_segments_each_recording_is_one_utterance():
    text = "rec1 HELLO WORLD\nrec2 GOOD  MORNING\nrec3 PIPED TEXT\nrec9 NO AUDIO HERE\n"
    got = table({"wav.scp": WAV_SCP, "text": text})
    assert [(r["id"], r["uri"], r["reference"], r["error"], r["start_s"], r["end_s"]) for r in got] == [
        ("rec1", "/corpus/wav/rec1.wav", "HELLO WORLD", None, None, None),
        ("rec2", "/exp/s5/wav/rec2.flac", "GOOD  MORNING", None, None, None),
        ("rec3", f"{DATA}/wav.scp", "PIPED TEXT", PIPED, None, None),
        ("rec9", f"{DATA}/text", "NO AUDIO HERE", "no audio: utterance rec9 of text has no wav.scp entry",
         None, None)]


def test_with_segments_the_segments_are_the_utterances():
    segments = ("rec1-a rec1 0.00 4.25\n"
                "rec1-b rec1 4.25 -1\n"
                "rec2-a rec2 1 2.5\n"
                "rec3-a rec3 0 3\n"
                "rec8-a rec8 0 1\n"
                "bad-a rec1 x 2\n"
                "bad-b rec1 3 2\n"
                "bad-c rec1 3\n")
    text = "rec1-a FIRST PART\nrec1-b SECOND PART\nrec2-a THIRD\nrec1-z ORPHAN\n"
    got = table({"wav.scp": WAV_SCP, "text": text, "segments": segments}, audio_root="s3://bkt/corpus")
    assert [(r["id"], r["uri"], r["reference"], r["start_s"], r["end_s"], r["error"]) for r in got] == [
        ("rec1-a", "s3://bkt/corpus/wav/rec1.wav", "FIRST PART", 0.0, 4.25, None),
        ("rec1-b", "s3://bkt/corpus/wav/rec1.wav", "SECOND PART", 4.25, None, None),
        ("rec2-a", "s3://bkt/corpus/wav/rec2.flac", "THIRD", 1.0, 2.5, None),
        ("rec3-a", f"{DATA}/wav.scp", None, None, None, PIPED),
        ("rec8-a", f"{DATA}/segments", None, None, None, "recording rec8 of segment rec8-a is not in wav.scp"),
        ("bad-a", f"{DATA}/segments", None, None, None,
         "segments line of bad-a: start/end 'x' '2' are not numbers"),
        ("bad-b", f"{DATA}/segments", None, None, None, "segments line of bad-b: span 3-2 is empty or negative"),
        ("bad-c", f"{DATA}/segments", None, None, None, "segments line of bad-c needs 'UTTID RECID START END'"),
        ("rec1-z", f"{DATA}/text", "ORPHAN", None, None,
         "no audio: utterance rec1-z of text has no segments entry")]


def test_s3_data_dir_without_text_bom_ark_and_repeated_recording():
    wav = "\ufeffr1 audio/r1.wav\nr2 /x/feats.ark:1234\nr1 audio/r1b.wav\nr4\n"
    got = table({"wav.scp": wav}, data_dir="s3://bkt/s5/data/dev/")
    assert [(r["id"], r["uri"], r["reference"], r["error"]) for r in got] == [
        ("r1", "s3://bkt/s5/audio/r1.wav", None, None),
        ("r2", "s3://bkt/s5/data/dev/wav.scp", None,
         "wav.scp entry '/x/feats.ark:1234' (recording r2) is not a file path; only plain paths are supported"),
        ("r1", "s3://bkt/s5/audio/r1b.wav", None, None),
        ("r4", "s3://bkt/s5/data/dev/wav.scp", None, "wav.scp entry of recording r4 has no path")]


def test_whole_dir_mistakes_are_one_clear_error():
    with pytest.raises(ConfigError, match="^Kaldi data dir /exp/s5/data/test has no wav.scp$"):
        kaldi_table(DATA, {"text": b"a b\n"})
    with pytest.raises(ConfigError, match=r"^Kaldi file /exp/s5/data/test/text is not UTF-8"):
        kaldi_table(DATA, {"wav.scp": b"a /a.wav\n", "text": "a CAF\xc9\n".encode("latin-1")})
