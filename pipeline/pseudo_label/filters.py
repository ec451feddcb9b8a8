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

Checks on the text itself, each after a public pipeline's convention (columns from
:mod:`pipeline.pseudo_label.quality`):

* language (Granary/OWSM v4): ``--languages`` keeps only the listed ones (``language``);
  ``--expected-language`` rejects a label whose detected language differs (``language_mismatch``),
  as OWSM v4 drops a YODAS text whose language differs from the one the audio was filed under.
* loops (NeMo SDP's Granary ``DetectWhisperHallucinationFeatures``, NeMo Curator's
  ``WhisperHallucinationStage``): the share of repeated words, ``1 - unique words / words``
  (``repeat_ratio``; SDP flags unique/words <= 0.4, i.e. a repeat ratio of 0.6); the most
  back-to-back repeats of one n-gram (``ngram_repeats``); the longest word (``long_word``; SDP's
  bound is 25 characters, which a compounding language's real words exceed, so those languages get
  :data:`COMPOUND_FACTOR` times the bound unless a per-language bound is given).
* rates (NeMo SDP ``DropHighLowCharrate`` / ``DropHighLowWordrate``): characters of the text
  (``len(text)``, spaces included, as SDP counts) and words per second of audio, outside
  ``[MIN, MAX]`` (``char_rate``, ``word_rate``).
* per-language quantile (OWSM v4): the lowest fraction by confidence within each language, among
  the labels every other rule kept (``lowest_confidence``; :mod:`pipeline.pseudo_label.quantile`).

Every rule is off when its threshold is ``None``. The first failing rule, in :data:`RULES`
order, names the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import jiwer

from pipeline.scoring import is_scorable_reference, word_errors

# reject_reason values, in the order the rules are checked; None means kept.
RULES = ("error", "empty_text", "language", "language_mismatch", "too_short", "too_long",
         "low_confidence", "draft_disagreement", "repeat_ratio", "ngram_repeats", "long_word",
         "char_rate", "word_rate", "no_reference", "high_wer", "audio_unavailable",
         "lowest_confidence")
# Languages whose ordinary words are compounds (German "Haftpflichtversicherung"): the longest-word
# bound is multiplied by COMPOUND_FACTOR for them unless the user gives their own bound.
COMPOUNDING_LANGUAGES = frozenset({"de", "nl", "sv", "da", "no", "nb", "nn", "is", "fi", "et", "hu"})
COMPOUND_FACTOR = 1.6
# 1 - 0.3 is not exactly 7/10 in binary: a ratio this close to the bound counts as on it (kept).
RATIO_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Filters:
    """Thresholds; ``None`` switches a rule off. Durations in seconds, the rest fractions (0-1)."""

    min_confidence: float | None = None
    max_draft_disagreement: float | None = None
    min_label_seconds: float | None = None
    max_label_seconds: float | None = None
    max_wer: float | None = None  # against the existing transcript read as the reference column
    languages: tuple[str, ...] | None = None             # ISO 639-1 codes to keep
    expected_language: str | None = None                 # one code for the whole run
    expected_language_column: str | None = None          # a column of the rows holding the code
    max_repeat_ratio: float | None = None                # 1 - unique words / words, 0-1
    max_ngram_repeats: int | None = None                 # back-to-back repeats of one n-gram
    max_word_length: int | None = None                   # characters; compounding languages x1.6
    max_word_length_by_language: tuple[tuple[str, int], ...] = ()
    chars_per_second: tuple[float | None, float | None] | None = None   # (MIN, MAX), None = open
    words_per_second: tuple[float | None, float | None] | None = None
    drop_lowest_confidence: float | None = None          # fraction per language, 0-1

    def as_dict(self) -> dict:
        out = asdict(self)
        out["max_word_length_by_language"] = dict(self.max_word_length_by_language)
        for name in ("languages", "chars_per_second", "words_per_second"):
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    def word_length_bound(self, language: str | None) -> int | None:
        """The longest-word bound for ``language`` (characters), or ``None`` when off."""
        own = dict(self.max_word_length_by_language)
        if language in own:
            return own[language]
        if self.max_word_length is None:
            return None
        if language in COMPOUNDING_LANGUAGES:
            return int(round(self.max_word_length * COMPOUND_FACTOR))
        return self.max_word_length

    def expected_for(self, row: dict) -> str | None:
        """The language ``row`` should be in: its ``expected_language_column`` value when that is
        set and non-empty, else ``expected_language`` (codes compared by primary subtag)."""
        from pipeline.pseudo_label.language import language_code

        if self.expected_language_column is not None:
            code = language_code(row.get(self.expected_language_column))
            if code is not None:
                return code
        return language_code(self.expected_language)


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


def outside(value: float | None, bounds: tuple[float | None, float | None] | None) -> bool:
    """``value`` below ``bounds[0]`` or above ``bounds[1]`` (``None`` sides are open)."""
    if bounds is None or value is None:
        return False
    low, high = bounds
    return (low is not None and value < low) or (high is not None and value > high)


def text_reason(row: dict, filters: Filters) -> str | None:
    """The loop and rate rules (``repeat_ratio``, ``ngram_repeats``, ``long_word``, ``char_rate``,
    ``word_rate``) on a row carrying :data:`~pipeline.pseudo_label.quality.QUALITY_FIELDS`."""
    if filters.max_repeat_ratio is not None and row.get("unique_word_ratio") is not None and \
            row["unique_word_ratio"] < 1.0 - filters.max_repeat_ratio - RATIO_TOLERANCE:
        return "repeat_ratio"
    if filters.max_ngram_repeats is not None and (row.get("longest_repeat") or 0) > filters.max_ngram_repeats:
        return "ngram_repeats"
    bound = filters.word_length_bound(row.get("language"))
    if bound is not None and (row.get("longest_word") or 0) > bound:
        return "long_word"
    if outside(row.get("chars_per_second"), filters.chars_per_second):
        return "char_rate"
    if outside(row.get("words_per_second"), filters.words_per_second):
        return "word_rate"
    return None


def decide(row: dict, filters: Filters, normalize: Callable[[str], str],
           normalizer: str = "english") -> tuple[bool, str | None]:
    """``(keep, reject_reason)`` for a transcript row (``error``, ``text``, ``duration_s``,
    ``confidence``, ``draft_disagreement``, ``reference``, and the quality columns of
    :func:`pipeline.pseudo_label.quality.quality_values` where a text rule is on). The
    ``lowest_confidence`` cut needs every row's confidence and is applied afterwards."""
    if row["error"]:
        return False, "error"
    if not (row["text"] or "").strip():
        return False, "empty_text"
    if filters.languages is not None and row.get("language") not in filters.languages:
        return False, "language"
    expected = filters.expected_for(row)
    if expected is not None and row.get("language") != expected:
        return False, "language_mismatch"
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
    reason = text_reason(row, filters)
    if reason:
        return False, reason
    if filters.max_wer is not None:
        reason = wer_reason(row.get("reference"), row["text"], filters.max_wer, normalize, normalizer)
        if reason:
            return False, reason
    return True, None
