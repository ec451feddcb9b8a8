"""Word error counts, the Open ASR Leaderboard's way.

Errors come from kaldialign's edit distance with ``merge_compounds=True`` (the leaderboard's
``normalizer/eval_utils.py``): adjacent words that concatenate to the other side's word cost
nothing, so ``white paper`` against ``whitepaper`` is 0 errors. Sets in another language than
English first pass through :func:`pipeline.text.compounds.pair_compounds`, as the leaderboard's
multilingual track does. Corpus WER = Σ errors / Σ reference words (``batch_error_rate``), never
a mean of per-utterance rates; per-pair counts add up to it exactly.
"""

from __future__ import annotations

from typing import Callable, Iterable

from kaldialign import batch_error_rate

from pipeline.text.compounds import pair_compound_words


def error_counts(references: Iterable[Iterable[str]], hypotheses: Iterable[Iterable[str]],
                 *, compound_pairs: bool = False) -> dict:
    """kaldialign ``batch_error_rate(refs, hyps, merge_compounds=True)`` over word sequences:
    ``{"ins", "del", "sub", "total", "ref_len", "err_rate"}`` (``err_rate`` = total / ref_len,
    ``inf`` when there are no reference words but some hypothesis words, 0.0 when neither).
    ``compound_pairs`` pairs compounds per (reference, hypothesis) first."""
    refs = [list(r) for r in references]
    hyps = [list(h) for h in hypotheses]
    if compound_pairs:
        paired = [pair_compound_words(r, h) for r, h in zip(refs, hyps, strict=True)]
        refs, hyps = [r for r, _ in paired], [h for _, h in paired]
    return batch_error_rate([tuple(r) for r in refs], [tuple(h) for h in hyps], merge_compounds=True)


def word_errors(reference: str, hypothesis: str, normalize: Callable[[str], str],
                *, compound_pairs: bool = False) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after normalising both sides
    (and pairing compounds when ``compound_pairs``; the word count is then the paired one)."""
    counts = error_counts([normalize(reference).split()], [normalize(hypothesis).split()],
                          compound_pairs=compound_pairs)
    return int(counts["total"]), int(counts["ref_len"])
