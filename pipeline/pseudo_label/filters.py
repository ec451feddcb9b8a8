"""Pseudo-labelling rules: score each transcript and decide ``keep`` with a ``reject_reason``.

Two signals from the model: ``confidence`` and ``draft_disagreement``, the word edit distance
between the encoder's draft and the editor's final text divided by the longer of the two (0 = the
editor kept the draft, 1 = it rewrote everything). An editor that rewrites much of its draft marks
a doubtful label.

One optional check against an existing (noisy) transcript, ``--max-wer``, follows distil-whisper's
``run_distillation.py``: the reference and the label are normalised with the same normaliser, a
reference that normalises to nothing (empty, only fillers like ``Hmm.``, only bracketed tags like
``[inaudible]``) never vouches for a label (``no_reference``), and a label is kept only when its
WER against the reference is at most the threshold.

Every rule is off when its threshold is ``None``. The first failing rule, in :data:`RULES`
order, names the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import jiwer

from pipeline.scoring import is_scorable_reference, word_errors

# reject_reason values, in the order the rules are checked; None means kept.
RULES = ("error", "empty_text", "too_short", "too_long", "low_confidence", "draft_disagreement",
         "no_reference", "high_wer", "audio_unavailable")


@dataclass(frozen=True)
class Filters:
    """Thresholds; ``None`` switches a rule off. Durations in seconds, the rest fractions (0-1)."""

    min_confidence: float | None = None
    max_draft_disagreement: float | None = None
    min_label_seconds: float | None = None
    max_label_seconds: float | None = None
    max_wer: float | None = None  # against the existing transcript read as the reference column

    def as_dict(self) -> dict:
        return asdict(self)


def draft_disagreement(draft: str, final: str, normalize: Callable[[str], str]) -> float:
    """Word edits between the normalised draft and final text ÷ the longer word count, in [0, 1]."""
    a, b = normalize(draft).split(), normalize(final).split()
    if not a and not b:
        return 0.0
    if not a or not b:
        return 1.0
    out = jiwer.process_words(" ".join(b), " ".join(a))
    edits = out.substitutions + out.deletions + out.insertions
    return min(1.0, edits / max(len(a), len(b)))


def wer_reason(reference: str | None, text: str, max_wer: float, normalize: Callable[[str], str],
               normalizer: str) -> str | None:
    """``no_reference`` when ``reference`` normalises to nothing scorable (nothing, the
    leaderboard's ignore marker, or no letter or digit at all: what a normaliser leaves of
    ``Um, uh...``), ``high_wer`` when the label's WER against it exceeds ``max_wer``, else ``None``."""
    if not is_scorable_reference(reference, normalizer) or \
            not any(ch.isalnum() for ch in normalize(reference)):
        return "no_reference"
    errors, words = word_errors(reference, text, normalize)
    return "high_wer" if errors / words > max_wer else None


def decide(row: dict, filters: Filters, normalize: Callable[[str], str],
           normalizer: str = "english") -> tuple[bool, str | None]:
    """``(keep, reject_reason)`` for a transcript row (``error``, ``text``, ``duration_s``,
    ``confidence``, ``draft_disagreement``, ``reference``)."""
    if row["error"]:
        return False, "error"
    if not (row["text"] or "").strip():
        return False, "empty_text"
    duration = row["duration_s"] or 0.0
    if filters.min_label_seconds is not None and duration < filters.min_label_seconds:
        return False, "too_short"
    if filters.max_label_seconds is not None and duration > filters.max_label_seconds:
        return False, "too_long"
    if filters.min_confidence is not None and (row["confidence"] or 0.0) < filters.min_confidence:
        return False, "low_confidence"
    if filters.max_draft_disagreement is not None and \
            row["draft_disagreement"] > filters.max_draft_disagreement:
        return False, "draft_disagreement"
    if filters.max_wer is not None:
        reason = wer_reason(row.get("reference"), row["text"], filters.max_wer, normalize, normalizer)
        if reason:
            return False, reason
    return True, None
