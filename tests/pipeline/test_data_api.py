"""The Ray Data API (``pipeline/data.py``): the README's example as written, and a user-built
Dataset (``from_items``: HF-style audio structs, a path-only row, a broken file, a row without
audio, extra columns) end to end against the reference's outputs; decoding stays its own stage;
the evaluation and pseudo-label functions on the rows; mistakes as one line naming parameters."""

from __future__ import annotations

import json
import re

import pytest

from pipeline import ConfigError, TranscriberConfig, build_transcriber
import pyarrow as pa

from pipeline.data import _decide_batch, pseudo_label_filter, score, word_error_rate
from pipeline.pseudo_label.filters import Filters
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL
from tests.pipeline.conftest import read_output
from tests.oracle import assert_row_matches_reference, assert_rows_match_reference, reference_outputs

SECTION = "## Ray Data in, Ray Data out (Python)"


def readme_example() -> str:
    """The first ``python`` block of the README's Ray Data section."""
    text = (REPO / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_ray_data_example_runs(tmp_path, monkeypatch, references):
    code = readme_example()
    assert "read_binary_files" in code and "read_corpus" in code and "write_results" in code
    monkeypatch.chdir(REPO)
    out = tmp_path / "api-example"
    namespace: dict = {}
    exec(compile(code.replace('"outputs/api-example"', repr(str(out))), "README.md", "exec"),
         namespace)
    rows = namespace["rows"]                # read_binary_files → the user's own columns
    assert_rows_match_reference(rows)
    assert {r["speaker"] for r in rows} == {"spk1"}
    assert all(r["source"].endswith(".flac") for r in rows)
    summary = namespace["summary"]          # read_corpus → write_results
    assert (summary["rows"], summary["errors"]) == (6, 0)
    assert json.loads((out / "_summary.json").read_text())["rows"] == 6
    written = read_output(out)
    assert_rows_match_reference(written)
    assert {r["id"]: r["reference"] for r in written} == references
    assert summary["wer_words"] == sum(len(t.split()) for t in references.values())


def test_user_built_dataset_end_to_end(ray_session, tmp_path):
    import ray

    flac = {name: (TINY_AUDIO / f"{name}.flac").read_bytes() for name in ("a02", "a03_twoblocks")}
    items = [
        {"id": "a02", "audio": {"bytes": flac["a02"], "path": None}, "lang": "en",
         "text": "found these teacher"},
        {"id": "a03_twoblocks", "audio": {"bytes": flac["a03_twoblocks"], "path": "x.flac"},
         "lang": "de", "text": None},
        {"id": "a04", "audio": {"bytes": None, "path": str(TINY_AUDIO / "a04.flac")},
         "lang": "fr", "text": None},
        {"id": "broken", "audio": {"bytes": b"this is not audio", "path": None}, "lang": "en",
         "text": None},
        {"id": "nothing", "audio": None, "lang": "en", "text": None},
    ]
    transcriber = build_transcriber(TranscriberConfig(model=str(TINY_MODEL), actors=(1, 1)))
    out = transcriber(ray.data.from_items(items)).materialize()
    stats = out.stats()
    # decoding ran as its own stage, never fused into the inference actors
    assert "MapBatches(decode_batch)" in stats and "MapBatches(Transcriber)" in stats
    assert "decode_batch)->MapBatches(Transcriber" not in stats
    rows = {r["id"]: r for r in out.take_all()}
    assert sorted(rows) == ["a02", "a03_twoblocks", "a04", "broken", "nothing"]
    for uid in ("a02", "a03_twoblocks", "a04"):
        assert_row_matches_reference(rows[uid], uid)
    assert {uid: r["lang"] for uid, r in rows.items()} == {
        "a02": "en", "a03_twoblocks": "de", "a04": "fr", "broken": "en", "nothing": "en"}
    assert rows["a04"]["source"] == str(TINY_AUDIO / "a04.flac")
    assert rows["broken"]["error"].startswith("undecodable audio") and rows["broken"]["text"] is None
    assert rows["nothing"]["error"] == "no audio in column 'audio'"
    assert rows["a02"]["reference"] == "found these teacher"
    ref_words = reference_outputs()["a02"]["step1_text"].split()
    assert rows["a02"]["wer_words"] == 3 and rows["a02"]["wer_errors"] >= abs(len(ref_words) - 3)
    assert rows["a04"]["wer_words"] is None

    rescored = {r["id"]: r for r in score(out, normalizer="none").take_all()}
    assert rescored["a02"]["lang"] == "en" and rescored["a02"]["wer_words"] == 3
    wer = word_error_rate(out)
    assert wer == {"utterances": 5, "errors": 2, "scored": 1, "wer_errors": rows["a02"]["wer_errors"],
                   "wer_words": 3, "wer": rows["a02"]["wer_errors"] / 3}
    decided = {r["id"]: r for r in pseudo_label_filter(out, Filters(min_confidence=0.0)).take_all()}
    assert decided["broken"]["reject_reason"] == "error" and not decided["broken"]["keep"]
    assert {uid for uid, r in decided.items() if r["keep"]} == {
        uid for uid in ("a02", "a03_twoblocks", "a04") if reference_outputs()[uid]["step1_text"].strip()}
    assert decided["a02"]["lang"] == "en"
    # kept_only: the same batch function, only the kept rows (no Ray needed to check it)
    kept = _decide_batch(pa.Table.from_pylist(list(rows.values())), filters=Filters(),
                         normalizer="english", kept_only=True)
    assert sorted(kept.column("id").to_pylist()) == sorted(
        uid for uid, r in decided.items() if r["keep"])


def test_api_mistakes_are_one_line_naming_parameters(ray_session):
    import ray

    with pytest.raises(ConfigError, match=r"^model=nope/x/y: no such folder") as caught:
        build_transcriber(TranscriberConfig(model="nope/x/y"))
    assert "--" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"^editing_steps=") as caught:
        TranscriberConfig(editing_steps=0).job_config()
    transcriber = build_transcriber(TranscriberConfig(model=str(TINY_MODEL), gpus_per_actor=1))
    ds = ray.data.from_items([{"id": "a", "audio": b"x"}])
    with pytest.raises(ConfigError, match=r"0 GPU.*pass gpus_per_actor=0"):
        transcriber(ds)
    transcriber = build_transcriber(TranscriberConfig(model=str(TINY_MODEL), actors=(1, 1)))
    with pytest.raises(ConfigError, match=r"no audio column 'audio' \(columns: id, wav\)"):
        transcriber(ray.data.from_items([{"id": "a", "wav": b"x"}]))
    with pytest.raises(ConfigError, match=r"column\(s\) confidence .* rename them"):
        transcriber(ray.data.from_items([{"id": "a", "audio": b"x", "confidence": 1.0}]))
    with pytest.raises(ConfigError, match=r"audio column 'audio' is int64"):
        transcriber(ray.data.from_items([{"id": "a", "audio": 3}]))


def test_api_settings_are_the_jobs_settings():
    """The API's config is the job's settings under the same names and defaults (the README's
    promise): each one given reaches the job's config, and the scoring helpers default to the
    job's normaliser."""
    import dataclasses
    import inspect

    from pipeline.config import RunSettings, TranscribeConfig

    given = dict(model="m", revision="r", editing_steps=2, device="cpu", dtype="bfloat16",
                 actors=(1, 2), gpus_per_actor=0.0, cpus_per_actor=1.0, max_frames_per_pack=900,
                 max_duration_seconds=60.0, max_segment_seconds=20.0, silence_dbfs=-50.0,
                 normalizer="basic", s3_endpoint="http://127.0.0.1:1", with_audio=True,
                 numerics="hub", language="de")
    assert set(given) == {f.name for f in dataclasses.fields(RunSettings)}
    job = TranscriberConfig(**given, audio_column="clip").job_config()
    assert {k: getattr(job, k) for k in given} == given
    default = TranscriberConfig().job_config()
    plain = TranscribeConfig(inputs=("x",), output="o")
    assert all(getattr(default, k) == getattr(plain, k) for k in given)
    assert plain.normalizer == "leaderboard"
    for fn in (score, pseudo_label_filter):
        assert inspect.signature(fn).parameters["normalizer"].default == "leaderboard"


def test_read_corpus_row_groups_size_the_fetch_and_are_noted(ray_session, tmp_path, monkeypatch):
    """read_corpus as the job: a Parquet row group over a decode task's memory request is one note (echo), and
    the largest row group's bytes ride in the Dataset's context (kept by derived datasets) to
    size the transcriber's fetch tasks, whose rows come out transcribed."""
    import pyarrow.parquet as pq

    from pipeline import read_corpus
    from pipeline.stages import row_groups
    from tests.pipeline.corpus import write_hf_parquet

    clip = (TINY_AUDIO / "a02.flac").read_bytes()
    shard = write_hf_parquet(tmp_path / "train-0.parquet", [(clip, None), (clip + b"\0", None)],
                             ["a", "b"], rows_per_group=2)
    group = pq.ParquetFile(shard).metadata.row_group(0)
    size = group.column(0).total_uncompressed_size + group.column(1).total_uncompressed_size
    monkeypatch.setattr("pipeline.run.row_group_note_budget", lambda settings=None: size - 1)
    said: list[str] = []
    ds = read_corpus(str(shard), echo=said.append)
    assert said == [f"note: {row_groups.large_groups_note(((f'{shard} row group 0', size),), size - 1)}"]
    derived = ds.filter(lambda r: True)
    assert derived.context.get_config(row_groups.LARGEST_GROUP_CONFIG) == size
    assert derived.context.get_config(row_groups.INDEX_ROWS_CONFIG) == 2   # sizes the decode blocks, no count()
    out = build_transcriber(TranscriberConfig(model=str(TINY_MODEL), actors=(1, 1)))(ds)
    op, fetch_args = out._logical_plan.dag, None
    while op is not None:
        if op.name == "MapBatches(prefetch_parquet)":
            fetch_args = op.ray_remote_args
        op = op.input_dependencies[0] if op.input_dependencies else None
    assert fetch_args == {"num_cpus": 0, "memory": row_groups.FETCH_WORKER_BYTES + row_groups.FETCH_COPIES * size}
    rows = out.take_all()
    assert sorted((r["id"], r["reference"], r["error"]) for r in rows) == [
        ("train-0/0", "a", None), ("train-0/1", "b", None)]
