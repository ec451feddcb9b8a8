"""The job's results equal the reference implementation's, utterance by utterance, whatever the
packing, the number of editing steps, the checkpoint's weight layout or the numerics profile: the
native checkpoint computes as the transformers PR, the original layout as the hub's own code unless
``--numerics transformers`` says otherwise."""

from __future__ import annotations

import pytest

from pipeline import TranscribeConfig, run_transcribe
from tests.conftest import REPO, TINY_AUDIO, TINY_MODEL
from tests.oracle import assert_rows_match_reference
from tests.pipeline.conftest import read_output, read_summary

ORIGINAL_LAYOUT = REPO / "tests" / "fixtures" / "granite-nar-tiny-original"


# --features-on accelerator (the decode tasks ship samples, the actor computes each pack's features
# in one batched call) gives the reference's rows under both profiles, as the CPU features do.
@pytest.mark.parametrize("model, steps, frames_per_pack, numerics, expected_numerics, features_on", [
    (TINY_MODEL, 1, 8000, None, "transformers", "cpu"),             # everything in one pack
    (TINY_MODEL, 2, 100, None, "transformers", "accelerator"),      # two editing passes, one or two utterances per pack
    (ORIGINAL_LAYOUT, 1, 100, None, "hub", "accelerator"),          # the hub's layout computes as its own code
    (ORIGINAL_LAYOUT, 3, 200, "transformers", "transformers", "cpu"),   # ... or as the PR, when asked; many packs
])
def test_job_rows_equal_the_reference(ray_session, tmp_path, model, steps, frames_per_pack, numerics,
                                      expected_numerics, features_on):
    out = tmp_path / "out"
    run_transcribe(TranscribeConfig(inputs=(str(TINY_AUDIO),), output=str(out), model=str(model),
                                    device="cpu", dtype="float32", editing_steps=steps,
                                    max_frames_per_pack=frames_per_pack, numerics=numerics,
                                    features_on=features_on),
                   echo=lambda *a: None)
    rows = read_output(out)
    assert_rows_match_reference(rows, steps=steps, numerics=expected_numerics)
    assert {r["numerics"] for r in rows} == {expected_numerics}
    # with features on the actor, each row's features time is its share of its pack's batched call
    assert all(r["features_seconds"] > 0 and r["infer_seconds"] > 0 for r in rows)
    summary = read_summary(out)
    assert (summary["rows"], summary["errors"], summary["rows_inferred"]) == (6, 0, 6)
    assert summary["settings"]["numerics"] == expected_numerics
    assert summary["settings"]["features_on"] == features_on
