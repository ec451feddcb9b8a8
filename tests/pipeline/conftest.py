"""Fixtures for the pipeline tests: direct model results and a way to run the job in-process."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from tests.conftest import TINY_AUDIO, TINY_MODEL

MANIFEST = TINY_MODEL / "manifest.jsonl"


@pytest.fixture(scope="session")
def references() -> dict[str, str]:
    rows = [json.loads(line) for line in MANIFEST.read_text().splitlines() if line.strip()]
    return {row["id"]: row["text"] for row in rows}


@pytest.fixture(scope="session")
def direct() -> dict[str, tuple[list[int], str]]:
    """id → (token_ids, text) from calling the model directly, one utterance at a time."""
    from model import load_model, log_mel

    model = load_model(str(TINY_MODEL))
    out = {}
    for path in sorted(TINY_AUDIO.glob("*.flac")):
        waveform, _ = sf.read(path, dtype="float32")
        [result] = model.transcribe([log_mel(waveform)])
        out[path.stem] = (list(result.token_ids), result.text)
    return out


def read_output(path) -> list[dict]:
    """Rows of every data file under a local output folder, sorted by id."""
    files = sorted(p for p in path.rglob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["id"], r["error"] or ""))


def read_summary(path) -> dict:
    return json.loads((path / "_summary.json").read_text())
