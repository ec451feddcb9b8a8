"""The run summary: computed from the written rows, saved as ``_summary.json``, printed on one screen."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

SUMMARY_COLUMNS = ["id", "duration_s", "error", "wer_errors", "wer_words", "model"]
TOP_ERRORS = 5


def _total(values) -> float:
    return float(sum(v for v in values if v is not None))


def summarize(table: pa.Table, *, new_ids: set[str], wall_seconds: float, model: str,
              settings: dict, dropped_unscorable: int | None = None) -> dict:
    """Summary of all rows under the output; ``new_ids`` are the ones this run computed."""
    rows = table.to_pylist()
    ok = [r for r in rows if r["error"] is None]
    new_ok = [r for r in ok if r["id"] in new_ids]
    audio_new = _total(r["duration_s"] for r in new_ok)
    words = int(_total(r["wer_words"] for r in ok))
    errors_words = int(_total(r["wer_errors"] for r in ok))
    reasons = Counter(_reason(r["error"]) for r in rows if r["error"] is not None)
    models = sorted({r["model"] for r in rows if r.get("model")})
    extra = {} if dropped_unscorable is None else {"dropped_unscorable": dropped_unscorable}
    return {
        **extra,
        "rows": len(rows),
        "errors": len(rows) - len(ok),
        "audio_seconds": round(_total(r["duration_s"] for r in ok), 3),
        "wall_seconds": round(wall_seconds, 3),
        "rows_inferred": sum(1 for r in rows if r["id"] in new_ids),
        "audio_seconds_inferred": round(audio_new, 3),
        "rtfx": round(audio_new / wall_seconds, 3) if wall_seconds > 0 else None,
        "wer": errors_words / words if words else None,
        "wer_errors": errors_words,
        "wer_words": words,
        "error_reasons": dict(reasons.most_common(TOP_ERRORS)),
        "model": ", ".join(models) if models else model,
        "settings": settings,
    }


def _reason(error: str) -> str:
    """The kind of an error message, without file-specific details."""
    return error.split(":", 1)[0][:80]


def format_summary(summary: dict, output: str) -> str:
    hours = summary["audio_seconds"] / 3600
    lines = [
        "── transcription summary " + "─" * 40,
        f"output          {output}",
        f"model           {summary['model']}",
        f"rows            {summary['rows']}  (this run: {summary['rows_inferred']}, "
        f"errors: {summary['errors']})",
        f"audio           {summary['audio_seconds']:.1f} s ({hours:.2f} h)",
        f"wall time       {summary['wall_seconds']:.1f} s   RTFx {summary['rtfx']}",
    ]
    if summary["wer"] is not None:
        lines.append(f"WER             {100 * summary['wer']:.2f} %  "
                     f"({summary['wer_errors']} errors / {summary['wer_words']} words)")
    for reason, count in summary["error_reasons"].items():
        lines.append(f"  error ×{count:<6} {reason}")
    return "\n".join(lines)
