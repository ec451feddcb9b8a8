"""Word and segment times on output rows (``--timestamps word|segment``), in seconds of the file.

The inference actor runs :func:`run_pack` instead of ``NarModel.transcribe`` (with word times, the
model's ``transcribe_with_alignment``: same results, plus each utterance's CTC forced alignment to
the BPE head of the same forward; see ``model/alignment.py``), then adds :func:`time_columns` to
each row. Pure functions apart from the model call.

File time: a row's ``segments`` already lie in seconds of the file (a NeMo ``offset`` / Kaldi
``segments`` span starts at its ``start_s``; a long input's segments follow each other from
there), so each segment's word times are shifted by its segment's ``start_s`` and clipped to it.

``timestamps_status`` per row (null with ``--timestamps none``):

* ``ok``: times computed (words with ``word``; segments and their texts with ``segment``);
* ``empty``: the model ran and produced no token: no word to time (``words`` null);
* ``too_many_tokens``: the transcript has more tokens than its BPE windows can hold as a CTC
  path (one window per token, plus a blank between equal neighbours): no honest time exists
  at this resolution, so ``words`` is null (nothing is interpolated);
* ``token_outside_head``: an id the BPE head lacks (a checkpoint whose editor and head vocabularies
  differ);
* ``text_mismatch``: the words could not be made to join to ``text`` exactly (a tokenizer whose
  pieces do not concatenate to its decoded text): ``words`` null rather than words that disagree;
* ``not_run``: the model did not run on the row (an ``error`` row, or a ``silent`` one).

For a segmented input the row's status is its first segment's failure; segments with no token
are fine when another segment has words (they add no text).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from model.alignment import EMPTY, OK, TokenAlignment, words as aligned_words
from model.nar import Transcription

NOT_RUN, TEXT_MISMATCH = "not_run", "text_mismatch"
MODES = ("none", "segment", "word")


@dataclass(frozen=True)
class AlignedTranscription(Transcription):
    """A :class:`~model.nar.Transcription` with its forced alignment (``None``: not aligned)."""

    alignment: TokenAlignment | None = None


def run_pack(model, batch: list, editing_steps: int, timestamps: str) -> list:
    """One pack through the model: ``Transcription`` per utterance, with its alignment under
    ``--timestamps word`` (:class:`AlignedTranscription`)."""
    if timestamps != "word":
        return model.transcribe(batch, editing_steps=editing_steps)
    results, alignments = model.transcribe_with_alignment(batch, editing_steps=editing_steps)
    names = [f.name for f in fields(Transcription)]
    return [AlignedTranscription(**{n: getattr(r, n) for n in names}, alignment=a)
            for r, a in zip(results, alignments)]


def _segment_spans(row: dict, count: int) -> list[tuple[float, float]]:
    """(start_s, end_s) in file time of each of the row's ``count`` segments."""
    segments = row.get("segments") or []
    if len(segments) == count:
        return [(s["start_s"], s["end_s"]) for s in segments]
    start = row.get("start_s") or 0.0
    return [(start, start + (row.get("duration_s") or 0.0))] * count


def segment_words(result: AlignedTranscription, pieces: list[bytes], start_s: float,
                  end_s: float) -> tuple[str, list[dict] | None]:
    """(status, words as dicts in file time) of one segment's result."""
    al = result.alignment
    if al is None:
        return NOT_RUN, None
    found = aligned_words(al, pieces, duration_s=end_s - start_s)
    if found is None:
        return al.status, None
    if " ".join(w.word for w in found) != " ".join(result.text.split()):
        return TEXT_MISMATCH, None
    return OK, [{"word": w.word, "start_s": start_s + w.start_s, "end_s": start_s + w.end_s,
                 "confidence": w.confidence} for w in found]


def time_columns(row: dict, results: list | None, timestamps: str, decoder) -> dict:
    """``timestamps_status``, ``words`` and ``segment_texts`` of one finished row.

    ``results``: the row's per-segment results in order (``None`` when the model did not run);
    ``decoder``: the model's :class:`~model.text.TextDecoder` (token bytes → word boundaries).
    """
    if timestamps == "none":
        return {}
    if row.get("error") or results is None:
        out = {"timestamps_status": NOT_RUN, "words": None, "segment_texts": None}
        if not row.get("error") and row.get("silent"):
            start = row.get("start_s") or 0.0
            out["segments"] = [{"start_s": start, "end_s": start + (row.get("duration_s") or 0.0)}]
            out["segment_texts"] = [""]
        return out
    spans = _segment_spans(row, len(results))
    out = {"segment_texts": [r.text.strip() for r in results], "words": None}
    if timestamps == "segment":
        return {**out, "timestamps_status": OK}
    statuses, found = [], []
    for result, (start, end) in zip(results, spans):
        pieces = decoder.token_bytes(result.token_ids) if decoder is not None else []
        status, ws = segment_words(result, pieces, start, end)
        statuses.append(status)
        found.extend(ws or [])
    failed = [s for s in statuses if s not in (OK, EMPTY)]
    if failed:
        return {**out, "timestamps_status": failed[0]}
    if OK not in statuses:
        return {**out, "timestamps_status": EMPTY}
    return {**out, "timestamps_status": OK, "words": found}
