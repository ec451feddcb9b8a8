"""A span of a longer file (NeMo offset/duration) is exported to the kept set as exactly that span."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from jobs import pseudo_label
from pipeline.stages.decode import decode
from tests.conftest import TINY_AUDIO, TINY_MODEL


def test_span_row_is_kept_as_its_span(ray_session, tmp_path):
    manifest = tmp_path / "spans.jsonl"
    manifest.write_text(
        json.dumps({"audio_filepath": str(TINY_AUDIO / "a06_long.flac"), "offset": 1.0,
                    "duration": 2.5}) + "\n"
        + json.dumps({"id": "whole", "audio_filepath": str(TINY_AUDIO / "a04.flac")}) + "\n")
    out = tmp_path / "out"
    assert pseudo_label.main(["--input", str(manifest), "--output", str(out),
                              "--model", str(TINY_MODEL)]) == 0
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert (summary["rows"], summary["kept"], summary["rejected_by"]) == (2, 2, {})
    lines = [json.loads(line) for f in sorted((out / "kept_manifest").glob("*.json"))
             for line in f.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    span_id = str(TINY_AUDIO / "a06_long") + "@1-3.5"
    assert sorted(by_id) == sorted([span_id, "whole"])
    audio, rate = sf.read(by_id[span_id]["audio_filepath"], dtype="float32")
    assert rate == 16000 and audio.size == 40000 and by_id[span_id]["duration"] == 2.5
    # Exactly the span's samples: the pipeline's decode of the whole file, cut at 1.0 s and 3.5 s.
    whole = decode((TINY_AUDIO / "a06_long.flac").read_bytes())
    assert np.max(np.abs(audio - whole[16000:56000])) < 2 ** -15
