"""Atomic output: a data file is visible whole or not at all, and ``_summary.json`` only once
every data file is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import TranscribeConfig, run_transcribe
from pipeline.sinks.atomic_fs import TEMP_PREFIX, atomic_local_filesystem
from pipeline.storage import Storage
from tests.reliability.conftest import MODEL, copy_corpus, visible_files


def test_ray_writes_local_parquet_through_the_atomic_filesystem(tmp_path):
    fs, _ = Storage().arrow_filesystem(str(tmp_path / "out"))
    assert fs.type_name == "py::atomic-local"


def test_a_half_written_file_is_never_visible(tmp_path):
    fs = atomic_local_filesystem()
    target = tmp_path / "part-0.parquet"
    table = pa.table({"id": [str(i) for i in range(10_000)]})
    with fs.open_output_stream(str(target)) as stream:
        with pq.ParquetWriter(stream, table.schema) as writer:
            writer.write_table(table.slice(0, 5_000))
            assert not target.exists()                        # still under a hidden name
            assert [p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir()] == [True]
            writer.write_table(table.slice(5_000))
    assert pq.read_table(target).num_rows == 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["part-0.parquet"]


def test_a_writer_that_dies_or_fails_half_way_publishes_nothing(tmp_path):
    target = tmp_path / "part-1.parquet"
    code = ("import pyarrow as pa, pyarrow.parquet as pq, os\n"
            "from pipeline.sinks.atomic_fs import atomic_local_filesystem\n"
            f"s = atomic_local_filesystem().open_output_stream({str(target)!r})\n"
            "w = pq.ParquetWriter(s, pa.schema([('id', pa.string())]))\n"
            "w.write_table(pa.table({'id': ['x'] * 1000}))\n"
            "os._exit(9)\n")                                   # killed mid-file
    assert subprocess.run([sys.executable, "-c", code], cwd=os.getcwd()).returncode == 9
    assert not target.exists()
    fs = atomic_local_filesystem()                            # closed without a Parquet footer
    with fs.open_output_stream(str(target)) as stream:
        stream.write(b"PAR1 and then the writer failed")
    assert not target.exists()
    assert all(p.name.startswith(TEMP_PREFIX) for p in tmp_path.iterdir())


def test_readers_during_a_run_see_only_complete_files_and_the_summary_last(ray_session, tmp_path):
    copy_corpus(tmp_path / "in", copies=12)                   # 72 rows, two data files
    out = tmp_path / "out"
    seen: dict = {"reads": 0, "summary_rows": None, "rows_when_summary": None, "errors": []}
    done = threading.Event()

    def reader():
        while not done.is_set() or seen["summary_rows"] is None:
            try:
                summary_path = out / "_summary.json"
                has_summary = summary_path.exists()
                rows = sum(pq.read_table(f).num_rows for f in visible_files(out))
                seen["reads"] += 1
                if has_summary and seen["summary_rows"] is None:
                    seen["summary_rows"] = json.loads(summary_path.read_text())["rows"]
                    seen["rows_when_summary"] = rows
            except FileNotFoundError:
                pass   # a temporary renamed away between listing and reading: not data
            except Exception as e:  # noqa: BLE001 - a torn file is what this test hunts
                seen["errors"].append(repr(e))
            if done.is_set() and not (out / "_summary.json").exists():
                break
            time.sleep(0.002)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        run_transcribe(TranscribeConfig(inputs=(str(tmp_path / "in"),), output=str(out),
                                        model=MODEL, actors=(1, 1)))
    finally:
        done.set()
        thread.join(30)
    assert seen["errors"] == [] and seen["reads"] > 10
    assert seen["summary_rows"] == seen["rows_when_summary"] == 72
