"""A span of a longer file (NeMo offset/duration) is exported to the kept set as exactly that span,
and a row of one channel (``--channel all``) as exactly that channel."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from jobs import pseudo_label
from pipeline.stages.decode import decode
from tests.conftest import TINY_AUDIO, TINY_MODEL


def test_span_and_channel_rows_are_kept_as_their_audio(ray_session, tmp_path):
    agent, _ = sf.read(TINY_AUDIO / "a04.flac", dtype="int16")
    customer, _ = sf.read(TINY_AUDIO / "a05.flac", dtype="int16")
    sf.write(tmp_path / "call.flac", np.stack([agent, customer[:agent.size]], 1), 16000,
             subtype="PCM_16")                                   # two speakers, one per channel
    manifest = tmp_path / "spans.jsonl"
    manifest.write_text(
        json.dumps({"audio_filepath": str(TINY_AUDIO / "a06_long.flac"), "offset": 1.0,
                    "duration": 2.5}) + "\n"
        + json.dumps({"id": "whole", "audio_filepath": str(TINY_AUDIO / "a04.flac")}) + "\n"
        + json.dumps({"id": "call", "audio_filepath": str(tmp_path / "call.flac")}) + "\n")
    out = tmp_path / "out"
    assert pseudo_label.main(["--input", str(manifest), "--output", str(out),
                              "--model", str(TINY_MODEL), "--channel", "all"]) == 0
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert (summary["rows"], summary["kept"], summary["rejected_by"]) == (4, 4, {})
    lines = [json.loads(line) for f in sorted((out / "kept_manifest").glob("*.json"))
             for line in f.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    span_id = str(TINY_AUDIO / "a06_long") + "@1-3.5#ch0"
    assert sorted(by_id) == sorted([span_id, "whole#ch0", "call#ch0", "call#ch1"])
    audio, rate = sf.read(by_id[span_id]["audio_filepath"], dtype="float32")
    assert rate == 16000 and audio.size == 40000 and by_id[span_id]["duration"] == 2.5
    # Exactly the span's samples: the pipeline's decode of the whole file, cut at 1.0 s and 3.5 s.
    whole = decode((TINY_AUDIO / "a06_long.flac").read_bytes())
    assert np.max(np.abs(audio - whole[16000:56000])) < 2 ** -15
    # Each channel's row keeps that channel's samples (16-bit at 16 kHz: bit-exact), not the mix.
    written = sf.read(tmp_path / "call.flac", dtype="float32")[0]
    for channel in (0, 1):
        kept, _ = sf.read(by_id[f"call#ch{channel}"]["audio_filepath"], dtype="float32")
        assert np.array_equal(kept, written[:, channel])
