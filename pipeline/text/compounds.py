"""Compound pairing before scoring (the leaderboard's multilingual ``normalize_compound_pairs``).

Languages that write compounds as one word (German ``Kindergarten``) are often transcribed split
(``kinder garten``), or the other way round. Before kaldialign, the leaderboard
(``huggingface/open_asr_leaderboard``, ``normalizer/eval_utils.py``) aligns each normalised
reference with its prediction word by word (``difflib.SequenceMatcher`` with its defaults) and,
for every stretch where the two differ, compares the stretch's characters with the spaces taken
out: when they are the same, both sides get the joined word, so the split spelling costs nothing.
Any other stretch is left as it is.

    pair_compounds("der kinder garten ist zu", "der kindergarten ist auf")
    == ("der kindergarten ist zu", "der kindergarten ist auf")
"""

from __future__ import annotations

from difflib import SequenceMatcher


def pair_compound_words(reference: list[str], hypothesis: list[str]) -> tuple[list[str], list[str]]:
    """The two word lists with every differing stretch that spells the same characters on both
    sides (spaces removed) replaced by that joined word on both sides."""
    ref_out: list[str] = []
    hyp_out: list[str] = []
    matcher = SequenceMatcher(None, reference, hypothesis)
    for tag, r0, r1, h0, h1 in matcher.get_opcodes():
        ref_part, hyp_part = reference[r0:r1], hypothesis[h0:h1]
        if tag != "equal" and "".join(ref_part) == "".join(hyp_part):
            ref_out.append("".join(ref_part))
            hyp_out.append("".join(hyp_part))
        else:
            ref_out.extend(ref_part)
            hyp_out.extend(hyp_part)
    return ref_out, hyp_out


def pair_compounds(reference: str, hypothesis: str) -> tuple[str, str]:
    """:func:`pair_compound_words` on whitespace-split text, joined back with single spaces."""
    ref, hyp = pair_compound_words(reference.split(), hypothesis.split())
    return " ".join(ref), " ".join(hyp)


def normalize_compound_pairs(references: list[str], hypotheses: list[str]) -> tuple[list[str], list[str]]:
    """:func:`pair_compounds` over parallel lists (the leaderboard's function's shape)."""
    pairs = [pair_compounds(r, h) for r, h in zip(references, hypotheses, strict=True)]
    return [r for r, _ in pairs], [h for _, h in pairs]
