"""Long inputs: cut at quiet points, every segment in the same packs, joined into the input's one row."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from model import load_model, log_mel
from pipeline import TranscribeConfig, run_transcribe
from tests.conftest import TINY_AUDIO, TINY_MODEL
from tests.pipeline.conftest import read_output

SR = 16000
CLIPS = ["a06_long", "a05", "a04", "a03_twoblocks"]
GAP_S = 0.4


def test_long_file_segments_equal_the_model_on_each_segment(ray_session, tmp_path):
    clips = [sf.read(TINY_AUDIO / f"{c}.flac", dtype="float32")[0] for c in CLIPS]
    gap = np.zeros(int(GAP_S * SR), dtype=np.float32)
    pieces, gaps, pos = [], [], 0
    for i, clip in enumerate(clips):
        pieces.append(clip)
        pos += clip.size
        if i < len(clips) - 1:
            pieces.append(gap)
            gaps.append((pos, pos + gap.size))
            pos += gap.size
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "joined.flac", np.concatenate(pieces), SR, subtype="PCM_16")
    sf.write(src / "short.flac", clips[2], SR, subtype="PCM_16")
    wave, _ = sf.read(src / "joined.flac", dtype="float32")  # what the pipeline decodes

    out = tmp_path / "out"
    run_transcribe(TranscribeConfig(inputs=(str(src),), output=str(out), model=str(TINY_MODEL), device="cpu",
                                    max_segment_seconds=8.0), echo=lambda *a: None)
    rows = {r["id"]: r for r in read_output(out)}
    assert sorted(rows) == ["joined", "short"]
    row = rows["joined"]
    assert row["error"] is None
    segments = [(round(s["start_s"] * SR), round(s["end_s"] * SR)) for s in row["segments"]]
    assert len(segments) >= 2 and segments[0][0] == 0 and segments[-1][1] == wave.size
    assert all(e - s <= 8 * SR for s, e in segments)
    for (_, cut), (start, _) in zip(segments, segments[1:]):
        assert cut == start
        assert any(g0 <= cut <= g1 for g0, g1 in gaps), f"cut at {cut / SR:.2f} s is not in a silence"

    model = load_model(TINY_MODEL, device="cpu")
    alone = model.transcribe([log_mel(wave[s:e]) for s, e in segments], return_logits=True)
    assert row["token_ids"] == [t for r in alone for t in r.token_ids]
    assert row["text"] == " ".join(r.text.strip() for r in alone if r.text.strip())
    # The joint confidence from the editor's own last-pass logits: every position of every segment.
    logits = torch.from_numpy(np.concatenate([r.logits for r in alone])).double()
    joint = float(torch.log_softmax(logits, dim=-1).max(dim=-1).values.mean().exp())
    # The last pass edits the draft: its positions follow the draft's length, not the output's.
    assert [r.logits.shape[0] for r in alone] == [2 * len(r.draft_ids) + 1 for r in alone]
    assert any(len(r.draft_ids) != len(r.token_ids) for r in alone)  # the case the old weighting got wrong
    assert abs(row["confidence"] - joint) < 1e-6
    assert abs(row["duration_s"] - wave.size / SR) < 1e-9
    # An input within the limit is one segment covering all of it.
    short = rows["short"]
    assert [(s["start_s"], s["end_s"]) for s in short["segments"]] == [(0.0, clips[2].size / SR)]
