"""Pseudo-labelling: score each transcript, decide ``keep`` with a ``reject_reason``, write training sets.

Two signals: the model's ``confidence`` and ``draft_disagreement``, the word edit distance between the
encoder's draft and the editor's final text divided by the longer of the two (0 = the editor kept the
draft, 1 = it rewrote everything). An editor that rewrites much of its draft marks a doubtful label.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

import jiwer
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.scoring import make_normalizer, word_errors


@dataclass(frozen=True)
class Filters:
    min_confidence: float | None = None
    max_draft_disagreement: float | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    max_wer: float | None = None  # against an existing (noisy) transcript, read as the reference column


def draft_disagreement(draft: str, final: str, normalize) -> float:
    a, b = normalize(draft).split(), normalize(final).split()
    if not a and not b:
        return 0.0
    if not a or not b:
        return 1.0
    out = jiwer.process_words(" ".join(b), " ".join(a))
    edits = out.substitutions + out.deletions + out.insertions
    return min(1.0, edits / max(len(a), len(b)))


def decide(row: dict, filters: Filters, normalize) -> tuple[bool, str | None]:
    """``(keep, reject_reason)``; the first failing rule names the reason."""
    if row["error"]:
        return False, "error"
    if not (row["text"] or "").strip():
        return False, "empty_text"
    duration = row["duration_s"] or 0.0
    if filters.min_duration_s is not None and duration < filters.min_duration_s:
        return False, "too_short"
    if filters.max_duration_s is not None and duration > filters.max_duration_s:
        return False, "too_long"
    if filters.min_confidence is not None and (row["confidence"] or 0.0) < filters.min_confidence:
        return False, "low_confidence"
    if filters.max_draft_disagreement is not None and row["draft_disagreement"] > filters.max_draft_disagreement:
        return False, "draft_disagreement"
    if filters.max_wer is not None and row.get("reference") is not None:
        errors, words = word_errors(row["reference"], row["text"], normalize)
        if words and errors / words > filters.max_wer:
            return False, "wer_vs_existing"
    return True, None


def score_and_filter(rows: list[dict], filters: Filters, normalizer: str) -> list[dict]:
    normalize = make_normalizer(normalizer)
    out = []
    for row in rows:
        row = dict(row)
        row["draft_disagreement"] = (None if row["error"] else
                                     draft_disagreement(row["draft_text"] or "", row["text"] or "", normalize))
        row["keep"], row["reject_reason"] = decide(row, filters, normalize)
        out.append(row)
    return out


def counts(rows: list[dict]) -> dict:
    reasons: dict[str, int] = {}
    for r in rows:
        if not r["keep"]:
            reasons[r["reject_reason"]] = reasons.get(r["reject_reason"], 0) + 1
    kept = [r for r in rows if r["keep"]]
    return {"rows": len(rows), "kept": len(kept), "rejected": len(rows) - len(kept), "rejected_by": reasons,
            "kept_audio_seconds": sum(r["duration_s"] or 0.0 for r in kept)}


def nemo_manifest(rows: list[dict]) -> str:
    """NeMo-style JSONL of the kept rows: ``audio_filepath``, ``duration``, ``text``."""
    return "".join(json.dumps({"audio_filepath": r["source"], "duration": r["duration_s"], "text": r["text"]}) + "\n"
                   for r in rows if r["keep"])


def hf_audio_table(rows: list[dict]) -> pa.Table:
    """Kept rows in the Hugging Face datasets audio layout (``audio`` struct with ``bytes`` and ``path``)."""
    kept = [r for r in rows if r["keep"]]
    audio_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.table({
        "id": pa.array([r["id"] for r in kept], pa.string()),
        "audio": pa.array([{"bytes": r.get("audio"), "path": r["source"]} for r in kept], audio_type),
        "text": pa.array([r["text"] for r in kept], pa.string()),
        "duration": pa.array([r["duration_s"] for r in kept], pa.float64()),
        "confidence": pa.array([r["confidence"] for r in kept], pa.float32()),
    })


def histogram_png(rows: list[dict]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if not r["error"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.hist([r["confidence"] or 0.0 for r in ok], bins=20, range=(0, 1), color="#4477aa")
    ax1.set_title("confidence")
    ax2.hist([r["draft_disagreement"] for r in ok], bins=20, range=(0, 1), color="#cc6677")
    ax2.set_title("draft disagreement")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(fs, root: str, rows: list[dict], summary: dict) -> None:
    """Scored Parquet, the kept set (HF audio Parquet + NeMo JSONL), summary and histogram."""
    scored_cols = [c for c in rows[0] if c != "audio"] if rows else ["id"]
    fs.makedirs(posixpath.join(root, "scored"), exist_ok=True)
    fs.makedirs(posixpath.join(root, "kept"), exist_ok=True)
    scored = pa.Table.from_pylist([{c: r.get(c) for c in scored_cols} for r in rows])
    with fs.open(posixpath.join(root, "scored", "part-00000.parquet"), "wb") as f:
        pq.write_table(scored, f)
    with fs.open(posixpath.join(root, "kept", "part-00000.parquet"), "wb") as f:
        pq.write_table(hf_audio_table(rows), f)
    with fs.open(posixpath.join(root, "kept_manifest.jsonl"), "w") as f:
        f.write(nemo_manifest(rows))
    with fs.open(posixpath.join(root, "histograms.png"), "wb") as f:
        f.write(histogram_png(rows))
    with fs.open(posixpath.join(root, "_pseudo_label_summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
