"""The leaderboard's figures, as pure functions of result rows (``huggingface/open_asr_leaderboard``,
``normalizer/eval_utils.py``: ``score_results``, ``merge_chunked_manifest``).

* WER of a dataset: kaldialign ``batch_error_rate(refs, hyps, merge_compounds=True)`` over the
  normalised word tuples = Σ errors / Σ reference words; ``wer_percent = round(100 * wer, 2)``.
  Sets in another language than English use the multilingual normaliser in their language and pair
  compounds first (``normalize_compound_pairs``), as the leaderboard's multilingual track does.
* Mean WER: the plain mean of the per-dataset rounded ``wer_percent`` values.
* RTFx: Σ audio seconds / Σ (feature extraction + model + text decoding) seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.text import IGNORED_REFERENCE, error_counts, is_english, make_normalizer


@dataclass(frozen=True)
class Scored:
    """One scorable unit: an utterance, or a chunked set's parent recording."""

    id: str
    reference: str | None
    hypothesis: str           # "" for failed rows
    failed: bool
    audio_seconds: float      # 0 for failed rows
    model_seconds: float | None
    segments: int = 1         # pieces the long-input handling cut it into


def wer_percent(wer: float | None) -> float | None:
    """WER in percent, rounded to 2 decimals as the leaderboard prints it (``round(100 * wer, 2)``)."""
    return None if wer is None else round(100 * wer, 2)


def mean_wer_percent(values: list[float]) -> float | None:
    """The leaderboard's average: the mean of the rounded per-dataset percentages (not re-rounded)."""
    return sum(values) / len(values) if values else None


def from_rows(rows: list[dict]) -> list[Scored]:
    """Output rows (``id``, ``text``, ``reference``, ``error``, ``duration_s``,
    ``features_seconds``, ``infer_seconds``) as scorable units; an error row is an empty hypothesis."""
    return [Scored(id=r["id"], reference=r.get("reference"),
                   hypothesis="" if r.get("error") else (r.get("text") or ""),
                   failed=bool(r.get("error")),
                   audio_seconds=0.0 if r.get("error") else float(r.get("duration_s") or 0.0),
                   model_seconds=_model_seconds(r),
                   segments=len(r.get("segments") or ()) or 1)
            for r in rows]


def _model_seconds(row: dict) -> float | None:
    if row.get("error"):
        return None
    parts = (row.get("features_seconds"), row.get("infer_seconds"))
    return None if any(p is None for p in parts) else float(sum(parts))


def join_chunks(rows: list[dict], chunks: list[dict], references: dict[str, str]) -> tuple[list[Scored], int]:
    """One unit per parent: chunk predictions joined with spaces in ``chunk_index`` order, empty
    (or failed) chunks skipped, scored against the parent's reference; durations and model times
    summed. ``chunks`` are ``{file, parent, index}`` (``file`` is the chunk row's id).

    Returns (units sorted by parent id, failed chunk count). A parent counts as failed only when
    every one of its chunks failed.
    """
    by_id = {r["id"]: r for r in rows}
    groups: dict[str, list[tuple[int, dict]]] = {}
    for chunk in chunks:
        row = by_id.get(chunk["file"])
        if row is not None:
            groups.setdefault(chunk["parent"], []).append((chunk["index"], row))
    units, failed_chunks = [], 0
    for parent in sorted(groups):
        ordered = sorted(groups[parent], key=lambda member: member[0])
        members = from_rows([row for _, row in ordered])
        failed_chunks += sum(u.failed for u in members)
        times = [u.model_seconds for u in members if not u.failed]
        units.append(Scored(
            id=parent, reference=references.get(parent),
            hypothesis=" ".join(h for u in members if (h := u.hypothesis.strip())),
            failed=all(u.failed for u in members),
            audio_seconds=sum(u.audio_seconds for u in members),
            model_seconds=None if any(t is None for t in times) or not times else sum(times),
            segments=len(members)))
    return units, failed_chunks


def _unscorable(words: list[str]) -> bool:
    return not words or " ".join(words) == IGNORED_REFERENCE


def score_units(units: list[Scored], normalizer: str, language: str = "en") -> dict:
    """WER and counts of one dataset in ``language`` by the leaderboard's rules.

    English: units whose reference is missing or normalises to nothing scorable (empty, or ``ignore
    time segment in scoring``) are left out and counted in ``dropped_unscorable``. Other languages
    (the multilingual track): the raw reference is tested instead, so one that normalises to nothing
    is scored (its hypothesis words are insertions), and compounds are paired before kaldialign.
    Failed units are scored as empty hypotheses (their reference words all count as deletions).
    """
    english = is_english(language)
    normalize = make_normalizer(normalizer, language if normalizer == "leaderboard" else None)
    refs, hyps, kept = [], [], []
    dropped = 0
    for unit in units:
        raw = unit.reference.split() if unit.reference is not None else []
        ref = normalize(unit.reference).split() if unit.reference is not None else []
        if _unscorable(ref if english else raw):
            dropped += 1
            continue
        refs.append(ref)
        hyps.append(normalize(unit.hypothesis).split())
        kept.append(unit)
    counts = error_counts(refs, hyps, compound_pairs=not english) if refs else \
        {"ins": 0, "del": 0, "sub": 0, "total": 0, "ref_len": 0}
    ok = [u for u in kept if not u.failed]
    wer = counts["total"] / counts["ref_len"] if counts["ref_len"] else None
    return {
        "wer": wer if ok else None, "wer_percent": wer_percent(wer) if ok else None,
        "word_errors": int(counts["total"]), "reference_words": int(counts["ref_len"]),
        "insertions": int(counts["ins"]), "deletions": int(counts["del"]),
        "substitutions": int(counts["sub"]),
        "utterances": len(kept), "succeeded": len(ok), "failed": len(kept) - len(ok),
        "dropped_unscorable": dropped,
        "audio_seconds": sum(u.audio_seconds for u in ok),
        "segments": sum(u.segments for u in ok),
        **rtfx_of(ok),
    }


def rtfx_of(units: list[Scored]) -> dict:
    """``model_seconds`` (Σ feature extraction + model + text decoding) and ``rtfx`` = Σ audio
    seconds / that, over the units that carry timings; ``rtfx`` is ``None`` without timings."""
    timed = [u for u in units if u.model_seconds is not None]
    seconds = sum(u.model_seconds for u in timed)
    audio = sum(u.audio_seconds for u in timed)
    return {"model_seconds": seconds, "rtfx": round(audio / seconds, 2) if seconds > 0 else None}
