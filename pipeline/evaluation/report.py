"""Evaluation report files at the output root: ``report.json``, a ``report.md`` with one table per
track shaped like the Open ASR Leaderboard's CSVs (WER % per set, the averages it prints, RTFx), a
per-set table, and a ``report.png`` chart with one panel per track; plus the console table.

Two speeds are reported and never under the same name: the **leaderboard RTFx** (Σ audio / Σ
feature extraction + model + text decoding seconds, the leaderboard's definition) and the **job
RTFx** (Σ audio / wall time of the whole job, audio decoding, model load and Ray included). Tables
are padded to their widest cell, so that a long set name keeps every column aligned in the file
and on the console.
"""

from __future__ import annotations

import io
import json
import posixpath

from pipeline.storage import Storage

CHART_NAME = "report.png"
TRACK_TITLES = {"english": "English short-form", "multilingual": "Multilingual",
                "longform": "English long-form", "custom": "Other sets"}
LEADERBOARD_RTFX = "leaderboard RTFx"
JOB_RTFX = "job RTFx"


def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def model_label(report: dict) -> str:
    """``hub-id@revision`` (or the local folder as given, with the revision asked for)."""
    return report["model"] + (f"@{report['revision']}" if report.get("revision") else "")


def aligned_table(header: list[str], rows: list[list[str]], right: list[bool] | None = None,
                  markdown: bool = True) -> list[str]:
    """Lines of a table whose every column is padded to its widest cell (numbers right-aligned
    where ``right`` says so). ``markdown`` gives ``| a | b |`` lines with a separator row;
    otherwise columns are joined by two spaces."""
    right = right or [False] + [True] * (len(header) - 1)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right)]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded).rstrip()

    out = [line(header)]
    if markdown:
        out.append("|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                                  for w, r in zip(widths, right)) + "|")
    return out + [line(r) for r in rows]


def _set_value(d: dict) -> str:
    return "failed" if d.get("error") else _fmt(d.get("wer_percent"))


def track_tables(report: dict) -> list[str]:
    """Markdown: one section per track, each table shaped like the leaderboard's CSV for it."""
    data, model = report["datasets"], report["model"]
    lines: list[str] = []
    for track, block in report.get("tracks", {}).items():
        lines += [f"## {TRACK_TITLES.get(track, track)}", ""]
        if track == "multilingual":
            for lang, sub in block["languages"].items():
                names = sub["datasets"]
                lines += [f"### {lang}", "", *aligned_table(
                    ["model", "Average WER", LEADERBOARD_RTFX, *names],
                    [[model, _fmt(sub["average_wer_percent"]), _fmt(sub["rtfx"]),
                      *(_set_value(data[n]) for n in names)]]), ""]
            lines += [f"Average over the {len(block['datasets'])} configs run: "
                      f"{_fmt(block['average_wer_percent'])} % · {LEADERBOARD_RTFX} {_fmt(block['rtfx'])}", ""]
        elif track == "longform":
            main = [n for n in block["datasets"] if not data[n].get("group")]
            groups = block["group_average_wer_percent"]
            header = ["model", "Average", LEADERBOARD_RTFX, *main, *(f"{g}_avg" for g in groups)]
            row = [model, _fmt(block["average_wer_percent"]), _fmt(block["rtfx"]),
                   *(_set_value(data[n]) for n in main), *(_fmt(v) for v in groups.values())]
            if groups:
                label = "Avg (without " + ", ".join(g.upper() for g in groups) + ")"
                header.append(label)
                row.append(_fmt(block["average_without_groups_wer_percent"]))
            lines += [*aligned_table(header, [row]), ""]
            lines += aligned_table(
                ["set", "recordings", "audio hours", "segments", "WER %"],
                [[n, str(block["recordings"][n] if block["recordings"][n] is not None else "—"),
                  _fmt(block["audio_hours"][n], ".3f"), str(block["segments"][n] or "—"), _set_value(data[n])]
                 for n in block["datasets"]]) + [""]
        else:
            names = block["datasets"]
            lines += [*aligned_table(["model", "Average WER", LEADERBOARD_RTFX, *names],
                                     [[model, _fmt(block["average_wer_percent"]), _fmt(block["rtfx"]),
                                       *(_set_value(data[n]) for n in names)]]), ""]
    return lines


def per_set_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-set table (report.md and the console share them)."""
    header = ["dataset", "track", "lang", "scored", "hours", "segments", "WER %", "errors / words",
              LEADERBOARD_RTFX, JOB_RTFX, "dropped", "failed"]
    rows = []
    for name, d in report["datasets"].items():
        if "utterances" not in d:
            rows.append([name, d.get("track") or "—", d.get("language") or "—", "—", "—", "—", "failed",
                         "—", "—", "—", "—", "—"])
            continue
        failed = str(d["failed"]) + (f" ({d['failed_chunks']} of {d['chunks']} chunks)" if "chunks" in d else "")
        rows.append([name, d.get("track") or "—", d.get("language") or "—", str(d["utterances"]),
                     f"{d['audio_seconds'] / 3600:.3f}", str(d.get("segments", "—")), _set_value(d),
                     f"{d['word_errors']} / {d['reference_words']}", _fmt(d["rtfx"]), _fmt(d["rtfx_job"]),
                     str(d["dropped_unscorable"]), failed])
    return header, rows


def markdown(report: dict) -> str:
    """The track tables, then per set what was scored, dropped or failed."""
    data = report["datasets"]
    numerics = report.get("numerics") or "the checkpoint's own"
    lines = [
        "# Evaluation report", "",
        f"Model: `{model_label(report)}` · numerics: `{numerics}`  ",
        f"Normaliser: `{report['normalizer']}` (per set: its language; multilingual sets pair compounds "
        "first) · scoring: kaldialign `batch_error_rate(merge_compounds=True)` · WER % rounded to 2 "
        "decimals, averages = means of the rounded values", "",
        *track_tables(report),
        "## Per dataset", "",
    ]
    header, rows = per_set_rows(report)
    lines += aligned_table(header, rows, [False, False, False] + [True] * (len(header) - 3))
    problems = [f"* **{name}**: {d['error']}" for name, d in data.items() if d.get("error")]
    if problems:
        lines += ["", "## Failed datasets", "", *problems]
    lines += [
        "", f"Audio {report['audio_seconds'] / 3600:.3f} h; job wall time {report['wall_seconds']:.1f} s. "
        f"{LEADERBOARD_RTFX} {_fmt(report['rtfx'])} = audio seconds / seconds of feature extraction + model + "
        f"text decoding (audio decoding, model load and warm-up excluded); {JOB_RTFX} "
        f"{_fmt(report['rtfx_job'])} = audio seconds / wall time of the whole job.",
        "", f"![WER per dataset]({CHART_NAME})", ""]
    return "\n".join(lines)


def console_table(report: dict) -> str:
    """The end-of-job console table: every set, then one average line per track (per language in
    the multilingual track), with both speeds under their own names."""
    header, rows = per_set_rows(report)
    keep = [0, 1, 2, 3, 4, 6, 8, 9, 10, 11]
    table = [[r[i] for i in keep] for r in rows]
    for track, block in report.get("tracks", {}).items():
        if track == "multilingual":
            for lang, sub in block["languages"].items():
                table.append([f"average {track} {lang}", "", "", "", "", _fmt(sub["average_wer_percent"]),
                              _fmt(sub["rtfx"]), "", "", ""])
        if track == "longform":
            for group, value in block["group_average_wer_percent"].items():
                table.append([f"average {group}", "", "", "", "", _fmt(value), "", "", "", ""])
            table.append([f"average {track} without {', '.join(block['group_average_wer_percent'])}"
                          if block["group_average_wer_percent"] else f"average {track}", "", "", "", "",
                          _fmt(block["average_without_groups_wer_percent"]), "", "", "", ""])
        table.append([f"average {track}", "", "", "", "", _fmt(block["average_wer_percent"]),
                      _fmt(block["rtfx"]), "", "", ""])
    table.append(["all sets", "", "", "", "", _fmt(report["mean_wer_percent"]), _fmt(report["rtfx"]),
                  _fmt(report["rtfx_job"]), "", ""])
    right = [False, False, False] + [True] * 7
    return "\n".join(aligned_table([header[i] for i in keep], table, right, markdown=False))


def build_chart(report: dict):
    """The matplotlib figure of ``report.png``: one panel per track, a bar per set with its WER %
    above it (``failed`` for failed sets), the track's average as a dashed line. Legends sit
    outside the panels, right of them, so that they never cover a bar or its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = report.get("tracks") or {"custom": {"datasets": list(report["datasets"]),
                                                 "average_wer_percent": report.get("mean_wer_percent")}}
    widest = max(len(b["datasets"]) for b in tracks.values())
    fig, axes = plt.subplots(len(tracks), 1, squeeze=False,
                             figsize=(max(7.0, 1.1 * widest + 4.0), 3.6 * len(tracks)))
    palette = ["#4477aa", "#228833", "#ccbb44", "#aa3377", "#66ccee", "#ee6677"]
    for ax, (track, block) in zip(axes[:, 0], tracks.items()):
        names = block["datasets"]
        values = [report["datasets"][n].get("wer_percent") for n in names]
        langs = [report["datasets"][n].get("language") or "en" for n in names]
        order = list(dict.fromkeys(langs))
        colors = [palette[order.index(lang) % len(palette)] for lang in langs] \
            if track == "multilingual" else palette[0]
        bars = ax.bar(names, [v or 0.0 for v in values], color=colors)
        ax.bar_label(bars, labels=["failed" if v is None else f"{v:.2f}" for v in values], padding=2)
        handles = []
        if block.get("average_wer_percent") is not None:
            handles.append(ax.axhline(block["average_wer_percent"], color="#cc6677", linestyle="--",
                                      label=f"average {block['average_wer_percent']:.2f}"))
        if track == "multilingual":
            from matplotlib.patches import Patch
            handles += [Patch(color=palette[i % len(palette)], label=lang) for i, lang in enumerate(order)]
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                      fontsize=8)
        ax.set_ylabel("WER (%)")
        ax.set_ylim(0, max([v or 0.0 for v in values] + [1.0]) * 1.25)
        ax.set_title(f"{TRACK_TITLES.get(track, track)} · {LEADERBOARD_RTFX} {_fmt(block.get('rtfx'))}",
                     fontsize=9)
        ax.tick_params(axis="x", rotation=20, labelsize=8)
    fig.suptitle(f"{model_label(report)} · {report['normalizer']} normaliser", fontsize=9)
    fig.tight_layout()
    return fig


def chart_png(report: dict) -> bytes:
    """``report.png``: :func:`build_chart` at 100 dpi."""
    import matplotlib.pyplot as plt

    fig = build_chart(report)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_reports(storage: Storage, output: str, report: dict) -> None:
    """Small metadata files at the output root, written by the driver after all data files."""
    fs, root = storage.filesystem(output)
    fs.makedirs(root, exist_ok=True)
    files = {
        "report.json": json.dumps(report, indent=2, sort_keys=True).encode(),
        "report.md": markdown(report).encode(),
        CHART_NAME: chart_png(report),
    }
    for name, data in files.items():
        with fs.open(posixpath.join(root, name), "wb") as f:
            f.write(data)
