"""The run summary: computed from the written rows, saved as ``_summary.json``, printed on one screen.

Computed with Arrow on the id/duration/error/timing columns only, so a corpus of millions of rows
costs the driver a few columns, not one Python object per row.
"""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

SUMMARY_COLUMNS = ["id", "duration_s", "error", "wer_errors", "wer_words", "model",
                   "infer_seconds", "infer_actor", "infer_actor_start", "infer_batch_end",
                   "infer_warmup_seconds"]
TOP_ERRORS = 5


def _sum(column) -> float:
    total = pc.sum(column).as_py() if len(column) else None
    return float(total or 0.0)


def accelerator_busy(table: pa.Table) -> float | None:
    """Σ inference-actor forward time ÷ Σ actor lifetimes, over the rows of ``table`` (0–1).

    An actor's forward time is the sum of its rows' ``infer_seconds`` and ``infer_warmup_seconds``
    (its first packs run twice: the warm-up keeps the leaderboard RTFx to steady state, yet the
    accelerator computes, it does not wait for the pipeline); its lifetime runs from
    ``infer_actor_start`` (before the model loads) to the end of its last batch (max
    ``infer_batch_end``). With one actor per accelerator this is the share of paid-for accelerator
    time that did model work (design.md, ``accelerator_busy``). ``None`` when no row carries timing
    (nothing was inferred, or the columns are absent). Outputs written before warm-up time was
    recorded count their timed forwards only.
    """
    needed = ("infer_actor", "infer_actor_start", "infer_batch_end", "infer_seconds")
    if any(name not in table.column_names for name in needed):
        return None
    columns = list(needed) + [c for c in ("infer_warmup_seconds",) if c in table.column_names]
    timed = table.select(columns).filter(pc.is_valid(table["infer_actor"]))
    if timed.num_rows == 0:
        return None
    warm = (timed["infer_warmup_seconds"] if "infer_warmup_seconds" in columns
            else pa.nulls(timed.num_rows, pa.float64()))
    forward = pc.add(pc.fill_null(timed["infer_seconds"], 0.0), pc.fill_null(warm, 0.0))
    timed = timed.select(["infer_actor", "infer_actor_start", "infer_batch_end"]).append_column(
        "forward", forward)
    per_actor = timed.group_by("infer_actor").aggregate([
        ("forward", "sum"), ("infer_actor_start", "min"), ("infer_batch_end", "max")])
    lifetime = _sum(pc.subtract(per_actor["infer_batch_end_max"], per_actor["infer_actor_start_min"]))
    busy = _sum(per_actor["forward_sum"])
    return round(busy / lifetime, 4) if lifetime > 0 else None


def summarize(table: pa.Table, *, new_ids, wall_seconds: float, model: str, settings: dict,
              dropped_unscorable: int | None = None) -> dict:
    """Summary of all rows under the output; ``new_ids`` (a set or an Arrow array of ids) are the
    ones this run computed. ``accelerator_busy`` covers this run's rows only;
    ``dropped_unscorable`` (evaluation) is recorded when given."""
    value_set = new_ids if isinstance(new_ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(new_ids), pa.string())
    is_new = pc.fill_null(pc.is_in(table["id"], value_set=value_set), False)
    is_ok = pc.is_null(table["error"])
    ok = table.filter(is_ok)
    new_ok = table.filter(pc.and_(is_ok, is_new))
    audio_new = _sum(new_ok["duration_s"])
    words = int(_sum(ok["wer_words"]))
    errors_words = int(_sum(ok["wer_errors"]))
    errors = table["error"].filter(pc.invert(is_ok)).to_pylist()
    reasons = Counter(_reason(e) for e in errors)
    models = sorted(m for m in pc.unique(table["model"]).to_pylist() if m) if table.num_rows else []
    extra = {} if dropped_unscorable is None else {"dropped_unscorable": dropped_unscorable}
    return {
        **extra,
        "rows": table.num_rows,
        "errors": len(errors),
        "audio_seconds": round(_sum(ok["duration_s"]), 3),
        "wall_seconds": round(wall_seconds, 3),
        "rows_inferred": int(pc.sum(pc.cast(is_new, pa.int64())).as_py() or 0),
        "audio_seconds_inferred": round(audio_new, 3),
        "rtfx": round(audio_new / wall_seconds, 3) if wall_seconds > 0 else None,
        "accelerator_busy": accelerator_busy(table.filter(is_new)),
        "wer": errors_words / words if words else None,
        "wer_errors": errors_words,
        "wer_words": words,
        "error_reasons": dict(reasons.most_common(TOP_ERRORS)),
        "model": ", ".join(models) if models else model,
        "settings": settings,
    }


REASON_CHARS = 160


# What a kind never includes: a row/line number prefix, quoted values, paths and URIs (a Windows
# drive's colon is not a separator).
_ROW_PREFIX = re.compile(r"^(?:manifest |lhotse \w+ at )?(?:row|line) \d+:\s*")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_PATH = re.compile(r"\S*[/\\]\S*?(?=:?(?:\s|$))")


def _reason(error: str) -> str:
    """The kind of an error message, without file-specific details: row numbers, quoted values
    and paths masked (``…``), then the text before its first ``": "``, ``" ("`` or ``"; "``, whole,
    or cut at a word boundary within ``REASON_CHARS`` with an ellipsis (``undecodable audio
    (soundfile: ...)`` → ``undecodable audio``; ``manifest row 4: offset 'x' is not a number`` →
    ``offset … is not a number``; ``cannot read C:\\a.wav: ...`` → ``cannot read …``)."""
    text = _PATH.sub("…", _QUOTED.sub("…", _ROW_PREFIX.sub("", error.strip())))
    head = re.split(r":(?:\s|$)| \(|; ", text, maxsplit=1)[0].strip()
    if len(head) <= REASON_CHARS:
        return head
    return head[:REASON_CHARS].rsplit(" ", 1)[0] + " …"


def format_summary(summary: dict, output: str) -> str:
    hours = summary["audio_seconds"] / 3600
    busy = summary.get("accelerator_busy")
    lines = [
        "── transcription summary " + "─" * 40,
        f"output          {output}",
        f"model           {summary['model']}",
        f"rows            {summary['rows']}  (this run: {summary['rows_inferred']}, "
        f"errors: {summary['errors']})",
        f"audio           {summary['audio_seconds']:.1f} s ({hours:.2f} h)",
        f"wall time       {summary['wall_seconds']:.1f} s   job RTFx {summary['rtfx']} (audio / wall time)",
        f"accelerator     {'n/a' if busy is None else f'{busy:.1%}'} busy "
        "(model forward time / inference actors' lifetime)",
    ]
    if summary["wer"] is not None:
        lines.append(f"WER             {100 * summary['wer']:.2f} %  "
                     f"({summary['wer_errors']} errors / {summary['wer_words']} words)")
    for reason, count in summary["error_reasons"].items():
        lines.append(f"  error ×{count:<6} {reason}")
    return "\n".join(lines)
