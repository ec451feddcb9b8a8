"""What the filters did, aggregated per block by Ray (rows and hours per rule) and drawn.

Each block of ``scored/`` becomes one small row of counts and histogram bins; the driver only
adds those up (a few numbers per block), so a 10-million-row run costs the driver nothing.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.pseudo_label.filters import RULES, Filters

STATS_COLUMNS = ["error", "keep", "reject_reason", "duration_s", "confidence", "draft_disagreement"]
BINS = 40
# Each panel: its value column, the reasons its thresholds produce, its x label.
PANELS = (
    ("confidence", ("low_confidence",), "confidence (exp of the mean log max-probability)"),
    ("draft_disagreement", ("draft_disagreement",), "draft disagreement (word edits ÷ longer text)"),
    ("duration_s", ("too_short", "too_long"), "duration (seconds)"),
)
GROUPS = ("kept", "this_rule", "other")


def block_counts(batch: pa.Table) -> pa.Table:
    """One row per block: ``counts_json`` = {reason or "kept": [rows, seconds]} and
    ``ranges_json`` = {panel column: [min, max]} over the rows without an error."""
    counts: dict[str, list] = {}
    for keep, reason, seconds in zip(batch.column("keep").to_pylist(),
                                     batch.column("reject_reason").to_pylist(),
                                     batch.column("duration_s").to_pylist()):
        entry = counts.setdefault("kept" if keep else reason, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds or 0.0
    ok = batch.filter(pc.is_null(batch.column("error")))
    ranges = {}
    for column, _, _ in PANELS:
        bounds = pc.min_max(ok.column(column))
        if bounds["min"].is_valid:
            ranges[column] = [float(bounds["min"].as_py()), float(bounds["max"].as_py())]
    return pa.table({"counts_json": [json.dumps(counts)], "ranges_json": [json.dumps(ranges)]})


def merge_counts(blocks: list[dict]) -> tuple[dict, dict]:
    """The per-block rows of :func:`block_counts` added up: ({name: [rows, seconds]},
    {column: [min, max]})."""
    total: dict[str, list] = {}
    ranges: dict[str, list] = {}
    for block in blocks:
        for name, (rows, seconds) in json.loads(block["counts_json"]).items():
            entry = total.setdefault(name, [0, 0.0])
            entry[0] += rows
            entry[1] += seconds
        for column, (low, high) in json.loads(block["ranges_json"]).items():
            old = ranges.get(column, [low, high])
            ranges[column] = [min(old[0], low), max(old[1], high)]
    return total, ranges


def summary_from_counts(counts: dict) -> dict:
    """Rows and hours kept and rejected per rule (``rejected_by`` in :data:`RULES` order)."""
    kept_rows, kept_s = counts.get("kept", [0, 0.0])
    rejected = {r: {"rows": counts[r][0], "seconds": round(counts[r][1], 3),
                    "hours": round(counts[r][1] / 3600, 6)} for r in RULES if r in counts}
    rows = sum(v[0] for v in counts.values())
    return {"rows": rows, "kept": kept_rows, "rejected": rows - kept_rows,
            "kept_seconds": round(kept_s, 3), "kept_hours": round(kept_s / 3600, 6),
            "rejected_seconds": round(sum(v["seconds"] for v in rejected.values()), 3),
            "rejected_by": rejected}


def bin_edges(ranges: dict, filters: Filters) -> dict[str, np.ndarray]:
    """``BINS`` equal bins per panel spanning the data and the panel's thresholds (a 5 % margin
    each side; fractions clipped to [0, 1], durations to >= 0)."""
    edges = {}
    for column, _, _ in PANELS:
        points = list(ranges.get(column, [0.0, 1.0])) + [v for v, _ in _thresholds(column, filters)]
        low, high = min(points), max(points)
        pad = max(high - low, 1e-3 if column != "duration_s" else 0.1) * 0.05
        low, high = max(0.0, low - pad), high + pad
        if column != "duration_s":
            high = min(1.0, high)
        edges[column] = np.linspace(low, high, BINS + 1)
    return edges


def block_histograms(batch: pa.Table, *, edges: dict) -> pa.Table:
    """One row per block: per panel and group (kept / rejected by the panel's rule / rejected by
    another rule) the counts in each bin. Rows with an error (no confidence) are left out."""
    ok = [r for r in batch.select(STATS_COLUMNS).to_pylist() if r["error"] is None]
    out = {}
    for column, reasons, _ in PANELS:
        for group in GROUPS:
            values = [r[column] for r in ok if _group(r, reasons) == group and r[column] is not None]
            counts, _ = np.histogram(np.clip(values, edges[column][0], edges[column][-1]),
                                     bins=edges[column])
            out[f"{column}:{group}"] = [counts.astype(np.int64).tolist()]
    return pa.table(out)


def _group(row: dict, reasons: tuple[str, ...]) -> str:
    if row["keep"]:
        return "kept"
    return "this_rule" if row["reject_reason"] in reasons else "other"


def merge_histograms(blocks: list[dict]) -> dict[str, np.ndarray]:
    total: dict[str, np.ndarray] = {}
    for block in blocks:
        for name, counts in block.items():
            total[name] = total.get(name, np.zeros(BINS, np.int64)) + np.asarray(counts, np.int64)
    return total


def _thresholds(column: str, filters: Filters) -> list[tuple[float, str]]:
    if column == "confidence":
        pairs = [(filters.min_confidence, "--min-confidence")]
    elif column == "draft_disagreement":
        pairs = [(filters.max_draft_disagreement, "--max-draft-disagreement")]
    else:
        pairs = [(filters.min_label_seconds, "--min-label-seconds"),
                 (filters.max_label_seconds, "--max-label-seconds")]
    return [(v, name) for v, name in pairs if v is not None]


def histogram_png(hist: dict[str, np.ndarray], edges: dict, filters: Filters,
                  summary: dict) -> bytes:
    """Three stacked histograms (kept / rejected by this panel's rule / rejected by another),
    threshold lines, counts in the legends, both axes labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    colours = {"kept": "#228833", "this_rule": "#cc3311", "other": "#bbbbbb"}
    for ax, (column, reasons, xlabel) in zip(axes, PANELS):
        bottom = np.zeros(BINS, np.int64)
        widths = np.diff(edges[column])
        for group in GROUPS:
            counts = hist.get(f"{column}:{group}", np.zeros(BINS, np.int64))
            label = {"kept": "kept", "this_rule": "rejected: " + " / ".join(reasons),
                     "other": "rejected by another rule"}[group]
            ax.bar(edges[column][:-1], counts, width=widths, bottom=bottom, align="edge",
                   color=colours[group], label=f"{label} ({int(counts.sum())})")
            bottom = bottom + counts
        for value, flag in _thresholds(column, filters):
            ax.axvline(value, color="black", linestyle="--", linewidth=1.2, label=f"{flag} {value:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("utterances")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(edges[column][0], edges[column][-1])
        ax.set_ylim(0, max(1, int(bottom.max())) * 1.6)   # headroom for the legend
        ax.legend(fontsize=8, loc="upper left")
    by_rule = ", ".join(f"{r} {v['rows']}" for r, v in summary["rejected_by"].items()) or "none"
    fig.suptitle(f"kept {summary['kept']} of {summary['rows']} utterances "
                 f"({summary['kept_hours']:.3f} h); rejected by rule: {by_rule}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def filter_stats(storage, root: str, scored_dir: str, filters: Filters) -> tuple[dict, bytes]:
    """(summary of rows/hours per rule, histograms PNG) from ``root/scored_dir`` via Ray."""
    import posixpath

    import ray.data

    arrow_fs, root_path = storage.arrow_filesystem(root)
    path = posixpath.join(root_path, scored_dir)
    blocks = ray.data.read_parquet(path, filesystem=arrow_fs).select_columns(STATS_COLUMNS).map_batches(
        block_counts, batch_format="pyarrow", batch_size=None).take_all()
    counts, ranges = merge_counts(blocks)
    summary = summary_from_counts(counts)
    edges = bin_edges(ranges, filters)
    hist = merge_histograms(ray.data.read_parquet(path, filesystem=arrow_fs).select_columns(STATS_COLUMNS)
                            .map_batches(block_histograms, batch_format="pyarrow", batch_size=None,
                                         fn_kwargs={"edges": edges}).take_all())
    return summary, histogram_png(hist, edges, filters, summary)
