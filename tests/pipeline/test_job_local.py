"""The job end to end on local files, one input format at a time, with a real local Ray."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pipeline import ConfigError, SourceColumns
from pipeline.scoring import make_normalizer, word_errors
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_rows_match_reference
from tests.pipeline.conftest import run_tiny as run, MANIFEST, read_output, read_summary
from tests.pipeline.corpus import audio_files, write_parquet_shard, write_tar_members, write_tar_shard

ALL_IDS = ["a01_short", "a02", "a03_twoblocks", "a04", "a05", "a06_long"]


def test_audio_folder_gives_the_models_own_results(ray_session, tmp_path):
    out = tmp_path / "out"
    summary = run([TINY_AUDIO], out)
    rows = read_output(out)
    assert [r["id"] for r in rows] == ALL_IDS
    assert_rows_match_reference(rows)
    assert {r["source"] for r in rows} == {str(TINY_AUDIO / f"{i}.flac") for i in ALL_IDS}
    assert {r["model"] for r in rows} == {str(TINY_MODEL)}
    assert all(r["reference"] is None and r["wer_words"] is None for r in rows)
    assert rows[1]["duration_s"] == pytest.approx(15217 / 16000)
    saved = read_summary(out)
    assert saved == json.loads(json.dumps(summary))
    assert (saved["rows"], saved["errors"], saved["rows_inferred"]) == (6, 0, 6)
    assert saved["audio_seconds"] == pytest.approx(sum(r["duration_s"] for r in rows), abs=1e-3)
    assert saved["model"] == str(TINY_MODEL) and saved["settings"]["editing_steps"] == 1
    with pytest.raises(ConfigError, match="--resume"):
        run([TINY_AUDIO], out)


def test_manifest_rows_carry_references_and_word_errors(ray_session, tmp_path,
                                                        references):
    out = tmp_path / "out"
    summary = run([MANIFEST], out, normalizer="basic")
    rows = read_output(out)
    assert [r["id"] for r in rows] == ALL_IDS
    assert_rows_match_reference(rows)
    basic = make_normalizer("basic")
    for row in rows:
        assert row["reference"] == references[row["id"]]
        assert (row["wer_errors"], row["wer_words"]) == word_errors(row["reference"], row["text"],
                                                                    basic)
    words = sum(r["wer_words"] for r in rows)
    assert summary["wer"] == pytest.approx(sum(r["wer_errors"] for r in rows) / words)


def test_parquet_shards_with_and_without_id_column(ray_session, tmp_path,
                                                   references):
    files = audio_files(TINY_AUDIO)
    shards = tmp_path / "shards"
    shards.mkdir()
    first, second = dict(list(files.items())[:3]), dict(list(files.items())[3:])
    write_parquet_shard(shards / "train-00000.parquet", first, references, with_id=True)
    write_parquet_shard(shards / "train-00001.parquet", second, references, with_id=False)
    out = tmp_path / "out"
    run([shards], out, with_audio=True)
    rows = {r["id"]: r for r in read_output(out)}
    assert sorted(rows) == sorted(list(first) + ["train-00001/0", "train-00001/1",
                                                 "train-00001/2"])
    by_name = {**{k: k for k in first}, **{f"train-00001/{i}": k for i, k in enumerate(second)}}
    assert_rows_match_reference(rows.values(), ids=list(by_name), origin=by_name)
    assert rows["train-00001/1"]["source"] == f"{shards}/train-00001.parquet#1"
    assert rows["a02"]["reference"] == references["a02"]
    assert rows["train-00001/2"]["audio"] == files["a06_long"].read_bytes()


def test_webdataset_shards_with_txt_and_json_texts(ray_session, tmp_path,
                                                   references):
    files = audio_files(TINY_AUDIO)
    shards = tmp_path / "wds"
    shards.mkdir()
    keys = list(files)
    write_tar_shard(shards / "shard-000.tar", {k: files[k] for k in keys[:4]}, references)
    write_tar_shard(shards / "shard-001.tar", {k: files[k] for k in keys[4:]}, references,
                    text_as_json=True)
    out = tmp_path / "out"
    run([shards], out)
    rows = read_output(out)
    assert [r["id"] for r in rows] == ALL_IDS
    assert_rows_match_reference(rows)
    assert all(r["reference"] == references[r["id"]] for r in rows)
    assert rows[5]["source"] == f"{shards}/shard-001.tar#a06_long"


def test_custom_manifest_columns(ray_session, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("wav,sentence\n" + "".join(
        f"{TINY_AUDIO / name}.flac,words {name}\n" for name in ALL_IDS[:2]))
    out = tmp_path / "out"
    run([manifest], out, columns=SourceColumns(audio="wav", text="sentence"))
    rows = read_output(out)
    # the audio lies outside the manifest's folder: the id is its whole path without extension
    assert [r["id"] for r in rows] == [str(TINY_AUDIO / name) for name in ALL_IDS[:2]]
    assert [r["reference"] for r in rows] == ["words a01_short", "words a02"]
    assert_rows_match_reference(rows, ids=[r["id"] for r in rows],
                                origin=lambda uid: uid.rsplit("/", 1)[-1])


def test_cli_stops_before_ray_when_the_model_is_unavailable(tmp_path):
    out = tmp_path / "never"
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.transcribe", "--input", "examples", "--output", str(out),
         "--model", "some-org/not-cached-anywhere"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "not in the local cache" in lines[0]
    assert lines[0].endswith(f"python -m jobs.transcribe --input examples --output {out} "
                             "--model tests/fixtures/granite-nar-tiny")
    assert "Ray" not in proc.stdout + proc.stderr and not out.exists()


def test_overwrite_replaces_earlier_results(ray_session, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(TINY_AUDIO / "a02.flac", src)
    out = tmp_path / "out"
    run([src], out)
    summary = run([src], out, overwrite=True)
    assert [r["id"] for r in read_output(out)] == ["a02"]
    assert (summary["rows"], summary["rows_inferred"]) == (1, 1)


def test_an_input_mistake_with_overwrite_leaves_the_old_output_and_ray_alone(ray_session, tmp_path):
    """Two NeMo tarred manifests in one folder and tars in neither's folder (a stray-tar mistake
    found when the index tasks are planned): with --overwrite the job stops with one line before
    the old output is emptied or Ray is started."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(TINY_AUDIO / "a02.flac", src)
    out = tmp_path / "out"
    run([src], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(p.suffix == ".parquet" for p in before)
    sets = tmp_path / "sets"
    for folder in ("a", "b"):
        (sets / folder).mkdir(parents=True)
        (sets / folder / "tarred_audio_manifest.json").write_text(
            json.dumps({"audio_filepath": "a02.flac", "shard_id": 0}) + "\n")
    (sets / "shards").mkdir()
    write_tar_members(sets / "shards" / "audio_0.tar",
                      [("a02.flac", (TINY_AUDIO / "a02.flac").read_bytes())])
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.transcribe", "--input", str(sets), "--output", str(out),
         "--model", str(TINY_MODEL), "--overwrite"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2       # a user's mistake (jobs/_common.py)
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: --input {str(sets)!r}: tar shard {sets}/shards/audio_0.tar is in no "
                     "folder of the 2 NeMo tarred manifests, so no manifest names "
                     "its rows; give each set (manifest and tars) as its own --input"], proc.stderr
    assert "Ray" not in proc.stdout + proc.stderr
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_row_group_over_the_decode_memory_request_is_a_summary_note(ray_session, tmp_path, monkeypatch):
    """A decode task's memory request (here lowered under the shard's one row group): the job says so in
    one note, kept in _summary.json, and transcribes the rows as usual."""
    import pyarrow.parquet as pq

    from pipeline.stages import row_groups
    from tests.pipeline.corpus import write_hf_parquet

    clip = (TINY_AUDIO / "a02.flac").read_bytes()
    (tmp_path / "pq").mkdir()
    shard = write_hf_parquet(tmp_path / "pq" / "train-0.parquet", [(clip, None)], ["x"])
    group = pq.ParquetFile(shard).metadata.row_group(0)
    size = group.column(0).total_uncompressed_size + group.column(1).total_uncompressed_size
    monkeypatch.setattr("pipeline.run.row_group_note_budget", lambda settings=None: size - 1)
    out = tmp_path / "out"
    summary = run([tmp_path / "pq"], out)
    note = row_groups.large_groups_note(((f"{shard} row group 0", size),), size - 1)
    assert summary["notes"] == read_summary(out)["notes"] == [note]
    assert [(r["id"], r["error"]) for r in read_output(out)] == [("train-0/0", None)]
