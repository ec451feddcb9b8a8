"""The reference implementations' outputs for the tiny checkpoint as the oracle for pipeline results.

Two references, one per numerics profile (model-spec §9):

* ``"transformers"``: the PR's code, ``granite-nar-tiny/expected.json`` and the step logits in its
  ``expected.npz`` (one, two and three editing passes);
* ``"hub"``: the checkpoint's own code, ``granite-nar-tiny-hub/`` (one pass; its logits are raw
  ``lm_head`` outputs, divided here by ``logits_scaling`` as both codes' results are).

Pipeline tests compare what the job wrote with what the reference computed for each utterance
alone: final ids and text of the chosen editing step, the CTC draft, and the confidence, which is
recomputed here from the reference's own last-pass logits (``exp`` of the mean log max-softmax
over the last pass's positions, design.md) instead of from our code.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from tests.conftest import REPO, TINY_MODEL

TINY_HUB = REPO / "tests" / "fixtures" / "granite-nar-tiny-hub"
FOLDERS = {"transformers": TINY_MODEL, "hub": TINY_HUB}
LOGITS_SCALING = {"transformers": 1.0, "hub": 8.0}   # what the stored logits still need dividing by
# Our logits match the reference's within 2e-6 (tests/model); the confidences that follow (about
# 0.005 for the random checkpoint) were seen to agree within 3e-9, float32 storage included.
CONFIDENCE_TOLERANCE = 1e-7


@lru_cache(maxsize=2)
def reference_outputs(numerics: str = "transformers") -> dict:
    return json.loads((FOLDERS[numerics] / "expected.json").read_text())["utterances"]


@lru_cache(maxsize=2)
def _logits(numerics: str = "transformers") -> dict:
    with np.load(FOLDERS[numerics] / "expected.npz") as data:
        return {k: data[k] / LOGITS_SCALING[numerics] for k in data.files if "/step" in k}


def reference_confidence(utterance: str, steps: int = 1, numerics: str = "transformers") -> float:
    """Confidence from the reference's logits of the last editing pass, shape ``[L, V]``."""
    logits = _logits(numerics)[f"{utterance}/step{steps}_logits"].astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_max = -np.log(np.exp(shifted).sum(axis=1))   # log of the max softmax probability per row
    return float(np.exp(log_max.mean()))


def assert_row_matches_reference(row: dict, utterance: str, steps: int = 1,
                                 numerics: str = "transformers") -> None:
    """One output row equals the ``numerics`` reference's result for the fixture ``utterance`` (its
    id may differ: a copy, a shard row, a path-derived id)."""
    ref = reference_outputs(numerics)[utterance]
    where = (row["id"], utterance, numerics)
    assert row["error"] is None, (where, row["error"])
    assert row["token_ids"] == ref[f"step{steps}_ids"], where
    assert row["text"] == ref[f"step{steps}_text"], where
    assert row["draft_text"] == ref["draft_text"], where
    assert abs(row["confidence"] - reference_confidence(utterance, steps, numerics)) < CONFIDENCE_TOLERANCE, where
    assert abs(row["duration_s"] - ref["num_samples"] / 16000) < 1e-9, where
    if "numerics" in row:
        assert row["numerics"] == numerics, where


def assert_rows_match_reference(rows, steps: int = 1, ids: list[str] | None = None,
                                origin=None, numerics: str = "transformers") -> None:
    """Every row equals the ``numerics`` reference's result; the rows' ids are exactly ``ids``
    (default: every fixture utterance). ``origin(row_id)`` (a dict or a function) names a row's
    fixture utterance when the id is not that name."""
    expected = reference_outputs(numerics)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == sorted(ids if ids is not None else expected), sorted(by_id)
    name_of = origin.__getitem__ if isinstance(origin, dict) else origin or (lambda uid: uid)
    for uid, row in by_id.items():
        assert_row_matches_reference(row, name_of(uid), steps, numerics)
