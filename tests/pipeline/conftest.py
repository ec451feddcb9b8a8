"""Fixtures for the pipeline tests: the fixture manifest's references and readers of written output.

Results are checked against the reference's own outputs (tests/oracle.py), never against a run of
our model, except on re-encoded audio where no fixture value exists.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.conftest import TINY_MODEL

MANIFEST = TINY_MODEL / "manifest.jsonl"


@pytest.fixture(scope="session")
def references() -> dict[str, str]:
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines() if line.strip()]
    return {row["id"]: row["text"] for row in rows}


def run_tiny(inputs, output, **kwargs) -> dict:
    """The transcribe job on ``inputs`` with the tiny checkpoint and one actor; its summary."""
    from pipeline import TranscribeConfig, run_transcribe

    config = TranscribeConfig(inputs=tuple(str(i) for i in inputs), output=str(output),
                              model=str(TINY_MODEL), actors=(1, 1), **kwargs)
    return run_transcribe(config)


def read_output(path) -> list[dict]:
    """Rows of every data file under a local output folder, sorted by id."""
    files = sorted(p for p in path.rglob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["id"], r["error"] or ""))


def read_summary(path) -> dict:
    return json.loads((path / "_summary.json").read_text())


@pytest.fixture(autouse=True)
def _one_ray_session(ray_session):
    """Every test here shares the session's one local Ray (tests/conftest.py): a job that calls
    ``ray.init()`` itself then finds it, so the session's settings hold for the whole run whatever
    the order of the tests."""
