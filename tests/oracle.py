"""The reference implementation's outputs for the tiny checkpoint (``expected.json`` and the step
logits in ``expected.npz``) as the oracle for pipeline results.

Pipeline tests compare what the job wrote with what the reference computed for each utterance
alone: final ids and text of the chosen editing step, the CTC draft, and the confidence, which is
recomputed here from the reference's own last-pass logits (``exp`` of the mean log max-softmax
over the ``2n+1`` positions, design.md) instead of from our code.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from tests.conftest import TINY_MODEL

# Our logits match the reference's within 2e-6 (tests/model); the confidences that follow (about
# 0.005 for the random checkpoint) were seen to agree within 3e-9, float32 storage included.
CONFIDENCE_TOLERANCE = 1e-7


@lru_cache(maxsize=1)
def reference_outputs() -> dict:
    return json.loads((TINY_MODEL / "expected.json").read_text())["utterances"]


@lru_cache(maxsize=1)
def _logits() -> dict:
    with np.load(TINY_MODEL / "expected.npz") as data:
        return {k: data[k] for k in data.files if "/step" in k}


def reference_confidence(utterance: str, steps: int = 1) -> float:
    """Confidence from the reference's logits of the last editing pass, shape ``[2n+1, V]``."""
    logits = _logits()[f"{utterance}/step{steps}_logits"].astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_max = -np.log(np.exp(shifted).sum(axis=1))   # log of the max softmax probability per row
    return float(np.exp(log_max.mean()))


def assert_row_matches_reference(row: dict, utterance: str, steps: int = 1) -> None:
    """One output row equals the reference's result for the fixture ``utterance`` (its id may
    differ: a copy, a shard row, a path-derived id)."""
    ref = reference_outputs()[utterance]
    where = (row["id"], utterance)
    assert row["error"] is None, (where, row["error"])
    assert row["token_ids"] == ref[f"step{steps}_ids"], where
    assert row["text"] == ref[f"step{steps}_text"], where
    assert row["draft_text"] == ref["draft_text"], where
    assert abs(row["confidence"] - reference_confidence(utterance, steps)) < CONFIDENCE_TOLERANCE, where
    assert abs(row["duration_s"] - ref["num_samples"] / 16000) < 1e-9, where


def assert_rows_match_reference(rows, steps: int = 1, ids: list[str] | None = None,
                                origin=None) -> None:
    """Every row equals the reference's result; the rows' ids are exactly ``ids`` (default: every
    fixture utterance). ``origin(row_id)`` (a dict or a function) names a row's fixture utterance
    when the id is not that name."""
    expected = reference_outputs()
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == sorted(ids if ids is not None else expected), sorted(by_id)
    name_of = origin.__getitem__ if isinstance(origin, dict) else origin or (lambda uid: uid)
    for uid, row in by_id.items():
        assert_row_matches_reference(row, name_of(uid), steps)
