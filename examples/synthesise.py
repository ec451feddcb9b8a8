"""Re-create the example clips (run once; the FLAC files and manifest are committed).

    python examples/synthesise.py

Needs ``espeak-ng`` (``apt-get install -y espeak-ng``). Writes 16 kHz mono FLAC files and
``manifest.jsonl`` (id, audio_filepath, duration, text) next to this script.
"""

from __future__ import annotations

import io
import json
import pathlib
import subprocess

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000
HERE = pathlib.Path(__file__).resolve().parent
CLIPS = {
    "fox": "The quick brown fox jumps over the lazy dog.",
    "stella": "Please call Stella and ask her to bring these things with her from the store.",
    "speech": "Speech recognition turns spoken words into written text.",
    "park": "It is a beautiful day for a walk in the park.",
    "meeting": "Twenty three people came to the meeting on Tuesday morning.",
}


def synthesise(text: str) -> np.ndarray:
    """espeak-ng's US English voice, resampled to 16 kHz mono float32."""
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text],
                         check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)


def main() -> None:
    rows = []
    for clip_id, text in CLIPS.items():
        audio = synthesise(text)
        path = HERE / f"{clip_id}.flac"
        sf.write(path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        rows.append({"id": clip_id, "audio_filepath": path.name,
                     "duration": round(len(audio) / SAMPLE_RATE, 6), "text": text})
    with open(HERE / "manifest.jsonl", "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
