"""Faults in the listings themselves, through the whole job: a manifest row whose audio file is
missing and a line that is not JSON each become one error row while the job goes on; a Parquet
shard without an audio column stops the job with one clear message."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import ConfigError
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_row_matches_reference
from tests.pipeline.conftest import run_tiny as run, read_output, read_summary


def test_missing_file_and_non_json_line_are_error_rows(ray_session, tmp_path):
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("\n".join([
        json.dumps({"audio_filepath": str(TINY_AUDIO / "a02.flac"), "id": "a02", "text": "two"}),
        json.dumps({"audio_filepath": str(tmp_path / "gone.flac"), "id": "gone", "text": "x"}),
        '{"audio_filepath": "broken.flac", "id": ',
        json.dumps({"audio_filepath": str(TINY_AUDIO / "a04.flac"), "id": "a04", "text": "four"}),
    ]) + "\n")
    out = tmp_path / "out"
    summary = run([manifest], out)
    rows = {r["id"]: r for r in read_output(out)}
    line3 = f"{manifest}:3"                 # no id to read: the manifest line is the id
    assert sorted(rows) == sorted(["a02", "a04", "gone", line3])
    assert_row_matches_reference(rows["a02"], "a02")
    assert_row_matches_reference(rows["a04"], "a04")
    gone = tmp_path / "gone.flac"
    assert (rows["gone"]["source"], rows["gone"]["reference"], rows["gone"]["error"]) == (
        str(gone), "x", f"cannot read {gone}: FileNotFoundError: [Errno 2] No such file or "
        f"directory: '{gone}'")
    assert (rows[line3]["source"], rows[line3]["error"]) == (
        str(manifest), "manifest row 3: not JSON (Expecting value at column 41)")
    for uid in ("gone", line3):
        assert (rows[uid]["text"], rows[uid]["token_ids"], rows[uid]["confidence"]) == \
            (None, None, None)
    assert (summary["rows"], summary["errors"], summary["rows_inferred"]) == (4, 2, 4)
    assert read_summary(out)["errors"] == 2


def test_parquet_shard_without_audio_column_is_one_clear_line(ray_session, tmp_path, capsys):
    from jobs.transcribe import main

    shard = tmp_path / "shards" / "train-0.parquet"
    shard.parent.mkdir()
    pq.write_table(pa.table({"id": ["u1", "u2"], "text": ["one", "two"]}), shard)
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["--input", str(shard.parent), "--output", str(out), "--model", str(TINY_MODEL),
                 "--actors", "1,1"])
    err = capsys.readouterr().err
    # (Ray's own lines may share stderr in process, the index task's traceback among them at
    # times: the session's Ray was not started by the job, so its quiet console does not apply.
    # The message is the one `error:` line.)
    assert (code, [line for line in err.splitlines() if line.startswith("error:")]) == (
        2, [f"error: Parquet shard {shard} has no audio column 'audio' (columns: id, text); "
            "fix --audio-column"])
    assert not out.exists()
    with pytest.raises(ConfigError, match="has no audio column 'audio'"):
        run([shard.parent], out)
