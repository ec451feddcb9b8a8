"""Bad files become error rows (one row per input), and --resume adds only what is missing."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from pipeline import TranscribeConfig, run_transcribe
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_row_matches_reference, assert_rows_match_reference
from tests.pipeline.conftest import read_output, read_summary
from tests.pipeline.corpus import noise, write_flac


def run(inputs, output, **kwargs) -> dict:
    config = TranscribeConfig(inputs=tuple(str(i) for i in inputs), output=str(output),
                              model=str(TINY_MODEL), actors=(1, 1), **kwargs)
    return run_transcribe(config)


def make_bad_corpus(root):
    (root / "sub").mkdir(parents=True)
    shutil.copy(TINY_AUDIO / "a02.flac", root / "a02.flac")
    shutil.copy(TINY_AUDIO / "a04.flac", root / "sub" / "a04.flac")
    (root / "corrupt.flac").write_bytes(np.random.default_rng(1).bytes(5000))
    (root / "empty.flac").write_bytes(b"")
    data = (TINY_AUDIO / "a05.flac").read_bytes()
    (root / "truncated.flac").write_bytes(data[: len(data) // 2])
    (root / "notaudio.wav").write_text("this is a text file, not a wave file\n" * 20)
    write_flac(root / "segment_long.flac", noise(25.0, level=0.01))
    write_flac(root / "too_long.flac", noise(45.0, level=0.01))
    write_flac(root / "silent.flac", np.zeros(16000, np.float32))
    write_flac(root / "tiny.flac", noise(0.01))
    dup = root.parent / "second"
    dup.mkdir()
    shutil.copy(TINY_AUDIO / "a06_long.flac", dup / "a02.flac")   # same name as a02 above
    return dup


def test_every_input_gives_one_row_and_bad_ones_say_why(ray_session, tmp_path):
    root = tmp_path / "in"
    dup = make_bad_corpus(root)
    out = tmp_path / "out"
    # several inputs: ids start at their common folder, so in/a02 and second/a02 (two different
    # files) stay two rows; the second folder given twice is a true repeat: duplicate id
    summary = run([root, dup, dup], out, max_duration_seconds=30.0, max_segment_seconds=20.0)
    rows = read_output(out)
    by_id = {}
    for row in rows:
        by_id.setdefault(row["id"].removeprefix("in/"), []).append(row)
    assert sorted(by_id) == ["a02", "corrupt", "empty", "notaudio", "second/a02", "segment_long",
                             "silent", "sub/a04", "tiny", "too_long", "truncated"]
    [good] = by_id.pop("a02")
    assert good["error"] is None and good["source"] == str(root / "a02.flac")
    assert_row_matches_reference(good, "a02")
    other, dup_row = sorted(by_id.pop("second/a02"), key=lambda r: r["error"] is not None)
    assert other["error"] is None and other["source"] == str(dup / "a02.flac")
    assert_row_matches_reference(other, "a06_long")
    assert dup_row["error"] == "duplicate id" and dup_row["source"] == str(dup / "a02.flac")
    assert dup_row["text"] is None and dup_row["token_ids"] is None
    [a04] = by_id.pop("sub/a04")
    assert_row_matches_reference(a04, "a04")
    [silent] = by_id.pop("silent")
    assert (silent["error"], silent["text"], silent["token_ids"], silent["silent"]) == \
        (None, "", [], True)
    [long] = by_id.pop("segment_long")  # 25 s over a 20 s segment limit: two segments, one row
    assert long["error"] is None and long["token_ids"] is not None
    assert len(long["segments"]) == 2 and long["segments"][0]["start_s"] == 0.0
    assert long["segments"][0]["end_s"] == long["segments"][1]["start_s"]
    assert long["segments"][1]["end_s"] == pytest.approx(25.0)
    errors = {uid: rows_[0]["error"] for uid, rows_ in by_id.items()}
    assert errors["corrupt"] == (
        "undecodable audio (soundfile: File does not exist or is not a regular file (possibly a "
        "pipe?); ffmpeg: Invalid data found when processing input)")
    assert errors["empty"] == "empty file (0 bytes)"
    # Half a FLAC stream: libsndfile loses sync in the middle of it.
    assert errors["truncated"] == "undecodable audio (soundfile: Error : flac decoder lost sync)"
    assert errors["notaudio"] == ("undecodable audio (soundfile: Format not recognised; ffmpeg: "
                                  "Invalid data found when processing input)")
    assert errors["too_long"].startswith("too long: 45.0 s > --max-duration-seconds 30")
    assert errors["tiny"].startswith("too short or invalid for features: ")
    for uid, (row,) in by_id.items():
        assert row["text"] is None and row["draft_text"] is None and row["confidence"] is None
    assert (summary["rows"], summary["errors"]) == (12, 7)


def test_resume_adds_only_missing_ids(ray_session, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    names = sorted(p.name for p in TINY_AUDIO.glob("*.flac"))
    for name in names[:2]:
        shutil.copy(TINY_AUDIO / name, src)
    out = tmp_path / "out"
    first = run([src], out)
    assert (first["rows"], first["rows_inferred"]) == (2, 2)
    first_files = {f: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
                   for f in sorted(out.rglob("*.parquet"))}
    assert first_files
    for name in names[2:]:                       # the rest of the corpus arrives
        shutil.copy(TINY_AUDIO / name, src)
    second = run([src], out, resume=True)
    rows = read_output(out)
    assert [r["id"] for r in rows] == [n[:-5] for n in names]
    assert_rows_match_reference(rows)
    assert (second["rows"], second["rows_inferred"], second["errors"]) == (6, 4, 0)
    assert read_summary(out)["rows_inferred"] == 4
    # Earlier results were kept as they were: same bytes, never rewritten.
    assert {f: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in first_files} == first_files
    third = run([src], out, resume=True)
    assert (third["rows"], third["rows_inferred"]) == (6, 0)
    assert len(read_output(out)) == 6


def test_resume_refuses_when_no_written_id_belongs_to_the_inputs(ray_session, tmp_path):
    from pipeline.config import ConfigError

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, name in ((a, "a02.flac"), (b, "a04.flac")):
        folder.mkdir()
        shutil.copy(TINY_AUDIO / name, folder / name)
    out = tmp_path / "out"
    assert run([a], out)["rows"] == 1
    written = {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()}
    assert any(f.name == "_summary.json" for f in written)
    # other inputs (or ids derived another way): every row would be written again beside the old
    with pytest.raises(ConfigError, match=r"^--resume: none of the 1 ids already in .* is an id of "
                                          r"these inputs .*use --overwrite to start over"):
        run([b], out, resume=True)
    # a refused resume changes nothing: data files and the summary as they were
    assert {f.relative_to(out): f.read_bytes() for f in out.rglob("*") if f.is_file()} == written
    assert [r["id"] for r in read_output(out)] == ["a02"]
