"""The whole job on the layouts of issue 9: every audio member, row and file gives exactly one
output row, with the reference's result where the audio is a fixture utterance (real Ray, tiny
checkpoint)."""

from __future__ import annotations

import soundfile as sf

from tests.conftest import TINY_AUDIO
from tests.oracle import assert_row_matches_reference
from tests.pipeline.conftest import run_tiny as run, read_output, read_summary
from tests.pipeline.corpus import (
    noise, write_hf_parquet, write_m4a, write_manifest_jsonl, write_sph, write_tar_members,
)


def flac(name: str) -> bytes:
    return (TINY_AUDIO / f"{name}.flac").read_bytes()


def test_folder_tar_and_hf_parquet_layouts_end_to_end(ray_session, tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    samples, _ = sf.read(TINY_AUDIO / "a04.flac", dtype="int16")
    write_sph(folder / "timit.sph", samples)
    write_m4a(folder / "sub" / "vox.m4a", noise(1.0))
    (tmp_path / "wds").mkdir()
    write_tar_members(tmp_path / "wds" / "shard-0.tar", [
        ("spk1/utt.001.flac", flac("a01_short")), ("spk1/utt.001.txt", b"one"),
        ("spk1/utt.002.flac", flac("a02")), ("spk1/utt.002.txt", b"two"),
        ("podcast/Track 2.5 (Live).flac", flac("a03_twoblocks")),
        ("podcast/Track 2.5 (Live).txt", b"live")])
    shards = tmp_path / "hf"
    shards.mkdir()
    (shards / "a05.flac").write_bytes(flac("a05"))
    write_hf_parquet(shards / "test-0.parquet", [(flac("a06_long"), "x.flac"), (None, "a05.flac")],
                     ["six", "five"])
    out = tmp_path / "out"
    summary = run([folder, tmp_path / "wds", shards], out)
    # several inputs: derived ids start at their common folder (WebDataset keys are the data's own)
    rows = {r["id"].removeprefix("folder/").removeprefix("hf/"): r for r in read_output(out)}
    assert sorted(r["id"] for r in rows.values()) == [
        "folder/sub/vox", "folder/timit", "hf/test-0/0", "hf/test-0/1", "podcast/Track 2",
        "spk1/utt", "spk1/utt.002.flac"]
    for uid, name in (("timit", "a04"), ("spk1/utt", "a01_short"),
                      ("podcast/Track 2", "a03_twoblocks"), ("test-0/0", "a06_long"),
                      ("test-0/1", "a05")):
        assert_row_matches_reference(rows[uid], name)
    assert [rows[k]["reference"] for k in ("spk1/utt", "podcast/Track 2", "test-0/1")] == \
        ["one", "live", "five"]
    second = rows["spk1/utt.002.flac"]
    assert second["error"].startswith("second audio member 'spk1/utt.002.flac' of WebDataset key")
    assert second["text"] is None and second["reference"] == "two"
    assert rows["sub/vox"]["source"] == str(folder / "sub" / "vox.m4a")
    # 1 s of noise as AAC decodes to whole 1024-sample frames: 17 of them (seen with PyAV's FFmpeg).
    assert (rows["sub/vox"]["error"], rows["sub/vox"]["duration_s"]) == (None, 17 * 1024 / 16000)
    assert (summary["rows"], summary["rows_inferred"]) == (7, 7)
    assert "dropped_unscorable" not in summary


def test_reference_filter_count_reaches_the_summary(ray_session, tmp_path):
    audio = str(TINY_AUDIO / "a02.flac")
    manifest = write_manifest_jsonl(tmp_path / "m.jsonl", [
        {"id": "kept", "audio_filepath": audio, "text": "hello"},
        {"id": "empty", "audio_filepath": audio, "text": ""},
        {"id": "marker", "audio_filepath": audio, "text": "ignore time segment in scoring"}])
    out = tmp_path / "out"
    summary = run([manifest], out, reference_filter="english")
    assert [r["id"] for r in read_output(out)] == ["kept"]
    assert (summary["rows"], summary["dropped_unscorable"]) == (1, 2)
    assert read_summary(out)["dropped_unscorable"] == 2


def test_librispeech_tree_and_kaldi_dirs_end_to_end(ray_session, tmp_path):
    """A LibriSpeech chapter and two Kaldi data dirs (one with ``segments``, one with a piped
    ``wav.scp`` entry) through the whole job: ids, references, spans and the model's results."""
    chapter = tmp_path / "LibriSpeech" / "test-clean" / "19" / "198"
    chapter.mkdir(parents=True)
    (chapter / "19-198-0001.flac").write_bytes(flac("a02"))
    (chapter / "19-198-0002.flac").write_bytes(flac("a04"))
    (chapter / "19-198.trans.txt").write_text("19-198-0001 HELLO THERE\n19-198-0002 GOOD MORNING\n")
    kaldi = tmp_path / "kaldi"
    (kaldi / "test").mkdir(parents=True)
    (kaldi / "seg").mkdir()
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "a05.flac").write_bytes(flac("a05"))
    (tmp_path / "wav" / "a06.flac").write_bytes(flac("a06_long"))
    (kaldi / "test" / "wav.scp").write_text(
        f"r5 {tmp_path / 'wav' / 'a05.flac'}\nr9 sph2pipe -f wav /x/r9.sph |\n")
    (kaldi / "test" / "text").write_text("r5 FIVE\nr9 PIPED\n")
    # relative wav.scp paths resolve against the recipe folder (the data dir's grandparent)
    (kaldi / "seg" / "wav.scp").write_text("long wav/a06.flac\n")
    (kaldi / "seg" / "segments").write_text("long-a long 0.0 1.5\nlong-b long 1.5 -1\n")
    (kaldi / "seg" / "text").write_text("long-a FIRST\nlong-b SECOND\n")
    total_s = sf.info(str(tmp_path / "wav" / "a06.flac")).frames / 16000

    out = tmp_path / "out"
    summary = run([tmp_path / "LibriSpeech", kaldi], out)
    rows = {r["id"]: r for r in read_output(out)}
    assert sorted(rows) == ["long-a", "long-b", "r5", "r9",
                            "test-clean/19/198/19-198-0001", "test-clean/19/198/19-198-0002"]
    assert_row_matches_reference(rows["test-clean/19/198/19-198-0001"], "a02")
    assert_row_matches_reference(rows["test-clean/19/198/19-198-0002"], "a04")
    assert_row_matches_reference(rows["r5"], "a05")
    assert [rows[k]["reference"] for k in ("test-clean/19/198/19-198-0001", "r5", "long-a", "long-b")] == \
        ["HELLO THERE", "FIVE", "FIRST", "SECOND"]
    assert rows["r9"]["error"].startswith("piped command in wav.scp (recording r9) is not supported")
    assert rows["r9"]["text"] is None
    assert (rows["long-a"]["error"], rows["long-b"]["error"]) == (None, None)
    assert abs(rows["long-a"]["duration_s"] - 1.5) < 1e-9
    assert abs(rows["long-b"]["duration_s"] - (total_s - 1.5)) < 1e-9
    assert (rows["long-a"]["start_s"], rows["long-b"]["start_s"]) == (0.0, 1.5)
    assert (summary["rows"], summary["errors"]) == (6, 1)


def test_channel_all_gives_one_row_per_channel_and_ghosts_are_counted(ray_session, tmp_path, capsys):
    import numpy as np

    a02, rate = sf.read(TINY_AUDIO / "a02.flac", dtype="int16")
    a04, _ = sf.read(TINY_AUDIO / "a04.flac", dtype="int16")
    other = np.resize(a04, a02.shape)
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "call.wav", np.stack([a02, other], axis=1), rate, subtype="PCM_16")
    (folder / "._call.wav").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    out = tmp_path / "out"
    summary = run([folder], out, channel="all")
    rows = {r["id"]: r for r in read_output(out)}
    assert sorted(rows) == ["call#ch0", "call#ch1"]
    assert_row_matches_reference(rows["call#ch0"], "a02")      # channel 0 alone, not the mix
    assert rows["call#ch1"]["error"] is None
    assert rows["call#ch1"]["duration_s"] == len(a02) / rate
    assert (summary["rows"], summary["rows_inferred"], summary["errors"]) == (2, 2, 0)
    assert "skipped 1 macOS metadata files (._*, __MACOSX/, .DS_Store)" in capsys.readouterr().out
