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

STATS_COLUMNS = ["error", "keep", "reject_reason", "duration_s", "confidence", "draft_disagreement",
                 "language", "unique_word_ratio", "longest_repeat", "longest_word", "chars_per_second",
                 "words_per_second"]
BINS = 40
NO_LANGUAGE = "unknown"          # rows without a detected language (errors, empty text)
LANGUAGE_RULES = ("language", "language_mismatch")
MAX_LANGUAGE_BARS = 12           # the rest are drawn as one "other" bar
# Each panel: its value column, the reasons its thresholds produce, its x label, whether its values
# are fractions (clipped to [0, 1]).
PANELS = (
    ("confidence", ("low_confidence", "lowest_confidence"),
     "confidence (exp of the mean log max-probability)", True),
    ("draft_disagreement", ("draft_disagreement",), "draft disagreement (word edits ÷ longer text)", True),
    ("duration_s", ("too_short", "too_long"), "duration (seconds)", False),
    ("unique_word_ratio", ("repeat_ratio",), "unique words ÷ words (low = loop)", True),
    ("longest_repeat", ("ngram_repeats",), "most back-to-back repeats of one n-gram", False),
    ("longest_word", ("long_word",), "longest word (characters)", False),
    ("chars_per_second", ("char_rate",), "characters per second of audio", False),
    ("words_per_second", ("word_rate",), "words per second of audio", False),
)
GROUPS = ("kept", "this_rule", "other")
INTEGER_COLUMNS = ("longest_repeat", "longest_word")


def _add(into: dict, name: str, seconds: float) -> None:
    entry = into.setdefault(name, [0, 0.0])
    entry[0] += 1
    entry[1] += seconds


def block_counts(batch: pa.Table) -> pa.Table:
    """One row per block: ``counts_json`` = {reason or "kept": [rows, seconds]},
    ``languages_json`` = {language: the same per language} and ``ranges_json`` = {panel column:
    [min, max]} over the rows without an error."""
    counts: dict[str, list] = {}
    languages: dict[str, dict] = {}
    language_column = batch.column("language").to_pylist() if "language" in batch.column_names \
        else [None] * len(batch)
    for keep, reason, seconds, lang in zip(batch.column("keep").to_pylist(),
                                           batch.column("reject_reason").to_pylist(),
                                           batch.column("duration_s").to_pylist(), language_column):
        name = "kept" if keep else reason
        _add(counts, name, seconds or 0.0)
        _add(languages.setdefault(lang or NO_LANGUAGE, {}), name, seconds or 0.0)
    ok = batch.filter(pc.is_null(batch.column("error")))
    ranges = {}
    for column, *_ in PANELS:
        if column not in ok.column_names:
            continue
        bounds = pc.min_max(ok.column(column))
        if bounds["min"].is_valid:
            ranges[column] = [float(bounds["min"].as_py()), float(bounds["max"].as_py())]
    return pa.table({"counts_json": [json.dumps(counts)], "languages_json": [json.dumps(languages)],
                     "ranges_json": [json.dumps(ranges)]})


def _merge_into(total: dict, more: dict) -> None:
    for name, (rows, seconds) in more.items():
        entry = total.setdefault(name, [0, 0.0])
        entry[0] += rows
        entry[1] += seconds


def merge_counts(blocks: list[dict]) -> tuple[dict, dict, dict]:
    """The per-block rows of :func:`block_counts` added up: ({name: [rows, seconds]},
    {column: [min, max]}, {language: {name: [rows, seconds]}})."""
    total: dict[str, list] = {}
    ranges: dict[str, list] = {}
    languages: dict[str, dict] = {}
    for block in blocks:
        _merge_into(total, json.loads(block["counts_json"]))
        for lang, counts in json.loads(block.get("languages_json") or "{}").items():
            _merge_into(languages.setdefault(lang, {}), counts)
        for column, (low, high) in json.loads(block["ranges_json"]).items():
            old = ranges.get(column, [low, high])
            ranges[column] = [min(old[0], low), max(old[1], high)]
    return total, ranges, languages


def summary_from_counts(counts: dict, languages: dict | None = None) -> dict:
    """Rows and hours kept and rejected per rule (``rejected_by`` in :data:`RULES` order) and, with
    ``languages``, the same per detected language (``by_language``, most rows first)."""
    kept_rows, kept_s = counts.get("kept", [0, 0.0])
    rejected = {r: {"rows": counts[r][0], "seconds": round(counts[r][1], 3),
                    "hours": round(counts[r][1] / 3600, 6)} for r in RULES if r in counts}
    rows = sum(v[0] for v in counts.values())
    out = {"rows": rows, "kept": kept_rows, "rejected": rows - kept_rows,
           "kept_seconds": round(kept_s, 3), "kept_hours": round(kept_s / 3600, 6),
           "rejected_seconds": round(sum(v["seconds"] for v in rejected.values()), 3),
           "rejected_by": rejected}
    if languages is not None:
        order = sorted(languages, key=lambda lang: (-sum(v[0] for v in languages[lang].values()), lang))
        out["by_language"] = {lang: summary_from_counts(languages[lang]) for lang in order}
    return out


def bin_edges(ranges: dict, filters: Filters, cuts: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``BINS`` equal bins per panel spanning the data and the panel's thresholds (a 5 % margin
    each side; fractions clipped to [0, 1], the rest to >= 0)."""
    edges = {}
    for column, _, _, fraction in PANELS:
        points = list(ranges.get(column, [0.0, 1.0])) + \
            [v for v, _ in panel_thresholds(column, filters, cuts)]
        low, high = min(points), max(points)
        pad = max(high - low, 1e-3 if fraction else 0.1) * 0.05
        low, high = max(0.0, low - pad), high + pad
        if fraction:
            high = min(1.0, high)
        edges[column] = np.linspace(low, high, BINS + 1)
    return edges


def _group(row: dict, reasons: tuple[str, ...]) -> str:
    if row["keep"]:
        return "kept"
    return "this_rule" if row["reject_reason"] in reasons else "other"


def block_histograms(batch: pa.Table, *, edges: dict) -> pa.Table:
    """One row per block, ``hist_json`` = {``<column>:<group>``: counts per bin} per panel and
    group (kept / rejected by the panel's rule / rejected by another rule), and
    {``language:<code>:<group>``: [rows]} per language. Rows with an error (no confidence) are
    left out of the panels."""
    rows = batch.select([c for c in STATS_COLUMNS if c in batch.column_names]).to_pylist()
    ok = [r for r in rows if r["error"] is None]
    out = {}
    for column, reasons, _, _ in PANELS:
        for group in GROUPS:
            values = [r[column] for r in ok if _group(r, reasons) == group and r.get(column) is not None]
            counts, _ = np.histogram(np.clip(values, edges[column][0], edges[column][-1]),
                                     bins=edges[column])
            out[f"{column}:{group}"] = counts.astype(np.int64).tolist()
    for r in rows:
        key = f"language:{r.get('language') or NO_LANGUAGE}:{_group(r, LANGUAGE_RULES)}"
        out[key] = [out.get(key, [0])[0] + 1]
    return pa.table({"hist_json": [json.dumps(out)]})


def merge_histograms(blocks: list[dict]) -> dict[str, np.ndarray]:
    total: dict[str, np.ndarray] = {}
    for block in blocks:
        for name, counts in json.loads(block["hist_json"]).items():
            counts = np.asarray(counts, np.int64)
            total[name] = total.get(name, np.zeros_like(counts)) + counts
    return total


def panel_thresholds(column: str, filters: Filters,
                     cuts: dict[str, float] | None = None) -> list[tuple[float, str]]:
    """(value, label) of each threshold drawn on ``column``'s panel."""
    pairs: list[tuple[float | None, str]] = []
    if column == "confidence":
        pairs = [(filters.min_confidence, "--min-confidence")]
        q = filters.drop_lowest_confidence
        pairs += [(v, f"lowest {q:.0%} of {lang}") for lang, v in sorted((cuts or {}).items())]
    elif column == "draft_disagreement":
        pairs = [(filters.max_draft_disagreement, "--max-draft-disagreement")]
    elif column == "duration_s":
        pairs = [(filters.min_label_seconds, "--min-label-seconds"),
                 (filters.max_label_seconds, "--max-label-seconds")]
    elif column == "unique_word_ratio" and filters.max_repeat_ratio is not None:
        pairs = [(1.0 - filters.max_repeat_ratio,
                  f"--max-repeat-ratio {filters.max_repeat_ratio:g}: keeps unique ratio ≥")]
    elif column == "longest_repeat":
        pairs = [(filters.max_ngram_repeats, "--max-ngram-repeats")]
    elif column == "longest_word":
        pairs = [(filters.max_word_length, "--max-word-length")]
        if filters.max_word_length is not None:
            pairs.append((filters.word_length_bound("de"), "compounding languages (de, nl, ...)"))
        pairs += [(v, f"{lang}") for lang, v in filters.max_word_length_by_language]
    elif column in ("chars_per_second", "words_per_second"):
        bounds = getattr(filters, column) or (None, None)
        flag = "--" + column.replace("_", "-")
        pairs = [(bounds[0], f"{flag} min"), (bounds[1], f"{flag} max")]
    seen, out = set(), []
    for v, name in pairs:
        if v is not None and (v, name) not in seen:
            seen.add((v, name))
            out.append((float(v), name))
    return out


COLOURS = {"kept": "#228833", "this_rule": "#cc3311", "other": "#bbbbbb"}
LINE_STYLES = ("--", ":", "-.", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1)))


def _language_panel(ax, hist: dict) -> None:
    """Stacked bars per language: kept / rejected by a language rule / rejected by another."""
    per: dict[str, dict[str, int]] = {}
    for name, counts in hist.items():
        if name.startswith("language:"):
            _, lang, group = name.split(":", 2)
            per.setdefault(lang, {})[group] = per.setdefault(lang, {}).get(group, 0) + int(counts[0])
    order = sorted(per, key=lambda lang: (-sum(per[lang].values()), lang))
    if len(order) > MAX_LANGUAGE_BARS:
        rest = order[MAX_LANGUAGE_BARS - 1:]
        other = {g: sum(per[lang].get(g, 0) for lang in rest) for g in GROUPS}
        order = order[:MAX_LANGUAGE_BARS - 1] + [f"{len(rest)} others"]
        per[order[-1]] = other
    x = np.arange(len(order))
    bottom = np.zeros(len(order), np.int64)
    labels = {"kept": "kept", "this_rule": "rejected: --languages / --expected-language",
              "other": "rejected by another rule"}
    for group in GROUPS:
        counts = np.array([per[lang].get(group, 0) for lang in order], np.int64)
        ax.bar(x, counts, width=0.6, bottom=bottom, color=COLOURS[group],
               label=f"{labels[group]} ({int(counts.sum())})")
        bottom = bottom + counts
    for xi, total in zip(x, bottom):
        ax.text(xi, total, str(int(total)), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, order)
    ax.set_xlim(-0.6, max(len(order), 8) - 0.4)    # a few languages do not become huge blocks
    ax.set_xlabel("detected language (py3langid, ISO 639-1)")
    ax.set_ylabel("utterances")
    ax.set_ylim(0, max(1, int(bottom.max(initial=0))) * 1.5)
    ax.legend(fontsize=8, loc="upper right")


def histogram_png(hist: dict[str, np.ndarray], edges: dict, filters: Filters,
                  summary: dict, cuts: dict[str, float] | None = None) -> bytes:
    """Language counts, then one stacked histogram per rule's value (kept / rejected by this
    panel's rule / rejected by another), each threshold a labelled line, counts in the legends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    fig = plt.figure(figsize=(16, 15))
    grid = fig.add_gridspec(4, 3)
    _language_panel(fig.add_subplot(grid[0, :]), hist)
    for i, (column, reasons, xlabel, _) in enumerate(PANELS):
        ax = fig.add_subplot(grid[1 + i // 3, i % 3])
        bottom = np.zeros(BINS, np.int64)
        widths = np.diff(edges[column])
        for group in GROUPS:
            counts = hist.get(f"{column}:{group}", np.zeros(BINS, np.int64))
            label = {"kept": "kept", "this_rule": "rejected: " + " / ".join(reasons),
                     "other": "rejected by another rule"}[group]
            ax.bar(edges[column][:-1], counts, width=widths, bottom=bottom, align="edge",
                   color=COLOURS[group], label=f"{label} ({int(counts.sum())})")
            bottom = bottom + counts
        for (value, name), style in zip(panel_thresholds(column, filters, cuts), LINE_STYLES * 4):
            ax.axvline(value, color="black", linestyle=style, linewidth=1.2, label=f"{name} {value:.4g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("utterances")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        # Few ticks, so that labels such as 0.0041 and 0.0042 never run together.
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=column in INTEGER_COLUMNS))
        ax.tick_params(axis="x", labelsize=8)
        ax.set_xlim(edges[column][0], edges[column][-1])
        ax.set_ylim(0, max(1, int(bottom.max())) * 1.8)   # headroom for the legend
        ax.legend(fontsize=7, loc="upper left")
    by_rule = ", ".join(f"{r} {v['rows']}" for r, v in summary["rejected_by"].items()) or "none"
    fig.suptitle(f"kept {summary['kept']} of {summary['rows']} utterances "
                 f"({summary['kept_hours']:.3f} h); rejected by rule: {by_rule}", fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def filter_stats(storage, root: str, scored_dir: str, filters: Filters,
                 cuts: dict[str, float] | None = None) -> tuple[dict, bytes]:
    """(summary of rows/hours per rule and per language, histograms PNG) from
    ``root/scored_dir`` via Ray; ``cuts`` are the per-language confidence thresholds used."""
    import posixpath

    from pipeline.cluster import read_parquet_by_tasks

    arrow_fs, root_path = storage.arrow_filesystem(root)
    path = posixpath.join(root_path, scored_dir)

    def scored():
        ds = read_parquet_by_tasks(path, arrow_fs)
        return ds.select_columns([c for c in STATS_COLUMNS if c in ds.schema().names])

    blocks = scored().map_batches(block_counts, batch_format="pyarrow", batch_size=None).take_all()
    counts, ranges, languages = merge_counts(blocks)
    summary = summary_from_counts(counts, languages)
    edges = bin_edges(ranges, filters, cuts)
    hist = merge_histograms(scored().map_batches(block_histograms, batch_format="pyarrow",
                                                 batch_size=None, fn_kwargs={"edges": edges}).take_all())
    return summary, histogram_png(hist, edges, filters, summary, cuts)
