"""Pure pieces of what a new user sees: the README's soundfile training snippet on a kept-layout
row, the Python API's model errors (parameters, not flags), the CLI's wording of the same error,
and the progress/stall lines (issue 24)."""

from __future__ import annotations

import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from tests.conftest import REPO, TINY_AUDIO


def readme_function(name: str) -> str:
    text = (REPO / "README.md").read_text()
    return re.search(rf"^def {name}\(.*?(?=^\S)", text, re.S | re.M).group(0)


def test_readme_training_snippet_reads_kept_rows_with_soundfile(tmp_path, expected):
    """The snippet's function on a row as ``datasets`` gives it with ``Audio(decode=False)``: the
    HF ``{bytes, path}`` struct of the kept Parquet (``datasets`` itself is not a dependency)."""
    flac = (TINY_AUDIO / "a02.flac").read_bytes()
    pq.write_table(pa.table({"audio": [{"bytes": flac, "path": "kept_audio/a02.flac"}],
                             "text": ["found these teacher"]}), tmp_path / "kept.parquet")
    [row] = pq.read_table(tmp_path / "kept.parquet").to_pylist()
    namespace = {"io": io, "sf": sf}
    exec(readme_function("to_array"), namespace)
    out = namespace["to_array"](row)
    assert out["sampling_rate"] == 16000
    assert out["array"].dtype == np.float32 and out["array"].shape == (expected["a02"]["num_samples"],)
    assert "Audio(decode=False)" in (REPO / "README.md").read_text()


def test_python_api_hub_error_speaks_of_parameters(tmp_path, monkeypatch):
    from pipeline import ModelUnavailable, TranscriberConfig, build_transcriber

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable) as caught:
        build_transcriber(TranscriberConfig(model="ibm-granite/granite-speech-4.1-2b-nar"))
    message = str(caught.value)
    assert "TranscriberConfig(model='tests/fixtures/granite-nar-tiny')" in message
    assert "--model" not in message


def test_cli_says_flags_where_the_model_says_load_model():
    from jobs._common import cli_words

    assert cli_words("not in the cache; pass a local checkpoint folder instead, e.g. "
                     "load_model('tests/fixtures/granite-nar-tiny')") == (
        "not in the cache; pass a local checkpoint folder instead, e.g. "
        "--model tests/fixtures/granite-nar-tiny")


def test_progress_lines_and_stall_note():
    from pipeline.progress import (
        progress_line, progress_mode, short_name, stall_note, stall_seconds, waiting_stage,
    )

    assert [progress_mode(False, 80), progress_mode(True, 200), progress_mode(True, 80)] == [
        "log", "bars", "lines"]
    assert short_name("ReadIndexInputs->MapBatches(select_items)") == "read+select"
    assert short_name("MapBatches(prefetch_parquet)->StreamingRepartition[num_rows_per_block=16,"
                      "strict=False]") == "fetch+cut"
    ops = [{"name": "MapBatches(prefetch_parquet)", "progress": 2, "total": 2, "state": "FINISHED"},
           {"name": "MapBatches(decode_batch)", "progress": 0, "total": 6, "queued_blocks": 0,
            "state": "RUNNING"},
           {"name": "MapBatches(Transcriber)", "progress": 0, "total": None, "queued_blocks": 0,
            "state": "RUNNING"}]
    assert progress_line(ops, 80) == "progress: fetch 2/2 · decode 0/6 · inference 0/?"
    assert progress_line(ops, 30) == "progress: fetch 2/2 · decode …"
    requests = {"decode_batch": {"CPU": 1}, "Transcriber": {"CPU": 1, "GPU": 0}}
    assert waiting_stage(ops, requests, {"CPU": 0})["name"] == "MapBatches(decode_batch)"
    assert waiting_stage(ops, requests, {"CPU": 2})["name"] == "MapBatches(decode_batch)"
    assert stall_note(ops[1], 181.2, "1 CPU per task", {"CPU": 0.0}, {"CPU": 4.0}) == (
        "note: no progress for 181 s: stage MapBatches(decode_batch) waits for 1 CPU per task "
        "(0 tasks done, 0 input blocks queued); free now 0 of 4 CPU, 0 of 0 GPU (other work on "
        "the cluster may hold the rest: `ray status`); lower --actors/--cpus-per-actor or free "
        "the cluster")
    assert stall_seconds({}) == 180 and stall_seconds({"NLE_STALL_SECONDS": "5"}) == 5
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=r"NLE_STALL_SECONDS must be a number of seconds > 0"):
        stall_seconds({"NLE_STALL_SECONDS": "soon"})
