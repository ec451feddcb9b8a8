"""Small evaluation inputs built from the tiny checkpoint's fixture audio, whose transcripts under
the tiny model are known (``expected.json``, ``step1_text``), so WERs can be computed independently."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from kaldialign import batch_error_rate
from pipeline import make_normalizer
from tests.model.conftest import TINY

AUDIO = TINY / "audio"
HYPOTHESES = {uid: u["step1_text"] for uid, u in json.loads((TINY / "expected.json").read_text())["utterances"].items()}
DURATIONS = {uid: u["num_samples"] / 16000 for uid, u in json.loads((TINY / "expected.json").read_text())["utterances"].items()}
MODEL_ARGS = ["--model", str(TINY), "--device", "cpu"]
# The same clips under the hub checkpoint's numerics (what a shipped leaderboard track runs by default).
HUB_HYPOTHESES = {uid: u["step1_text"] for uid, u in
                  json.loads((TINY.parent / "granite-nar-tiny-hub" / "expected.json").read_text())["utterances"].items()}


def expected_wer_percent(pairs: list[tuple[str, str]], normalizer: str = "leaderboard") -> float:
    """round(100 * kaldialign corpus WER, 2) of (reference, hypothesis) pairs, empty refs left out."""
    norm = make_normalizer(normalizer)
    refs, hyps = [], []
    for ref, hyp in pairs:
        words = norm(ref).split()
        if words:
            refs.append(tuple(words))
            hyps.append(tuple(norm(hyp).split()))
    return round(100 * batch_error_rate(refs, hyps, merge_compounds=True)["err_rate"], 2)


def write_manifest(folder, rows: list[tuple[str, str]], name: str = "manifest.jsonl"):
    """``rows`` of (fixture utterance, reference): audio copied under ``folder/audio``."""
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for uid, ref in rows:
        shutil.copy(AUDIO / f"{uid}.flac", folder / "audio" / f"{uid}.flac")
        lines.append(json.dumps({"id": uid, "audio_filepath": f"audio/{uid}.flac", "text": ref}))
    (folder / name).write_text("\n".join(lines) + "\n")
    return folder / name


def write_hf_parquet(path, rows: list[tuple[str, str]], text_column: str = "text", with_id: bool = True):
    """A Parquet shard in the Hugging Face datasets layout: ``audio`` {bytes, path} and a text column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {
        "audio": [{"bytes": (AUDIO / f"{uid}.flac").read_bytes(), "path": f"{uid}.flac"} for uid, _ in rows],
        text_column: [ref for _, ref in rows],
    }
    if with_id:
        columns["id"] = [uid for uid, _ in rows]
    pq.write_table(pa.table(columns), path)
    return path
