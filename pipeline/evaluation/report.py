"""Evaluation report files at the output root: ``report.json``, a ``report.md`` shaped like the
Open ASR Leaderboard's table (WER % per set, their mean, RTFx) and a ``report.png`` chart."""

from __future__ import annotations

import io
import json
import posixpath

from pipeline.storage import Storage

CHART_NAME = "report.png"


def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def model_label(report: dict) -> str:
    """``hub-id@revision`` (or the local folder as given)."""
    return report["model"] + (f"@{report['revision']}" if report.get("revision") else "")


def markdown(report: dict) -> str:
    """The leaderboard-shaped table, then per set what was dropped or failed."""
    data = report["datasets"]
    names = list(data)
    lines = [
        "# Evaluation report", "",
        f"Model: `{model_label(report)}`  ",
        f"Normaliser: `{report['normalizer']}` · scoring: kaldialign `batch_error_rate(merge_compounds=True)` · "
        f"WER % rounded to 2 decimals, average = mean of the rounded values", "",
        "| model | Average WER ⬇️ | RTFx ⬆️ | " + " | ".join(names) + " |",
        "|---|---:|---:|" + "---:|" * len(names),
        f"| {report['model']} | {_fmt(report['mean_wer_percent'])} | {_fmt(report['rtfx'])} | "
        + " | ".join(_fmt(d.get("wer_percent")) if not d.get("error") else "failed" for d in data.values()) + " |",
        "",
        "## Per dataset", "",
        "| dataset | scored | hours | WER % | errors / words | RTFx | RTFx (job) | dropped (unscorable) | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d in data.items():
        if "utterances" not in d:
            lines.append(f"| {name} | — | — | failed | — | — | — | — | — |")
            continue
        failed = str(d["failed"]) + (f" ({d['failed_chunks']} of {d['chunks']} chunks)" if "chunks" in d else "")
        lines.append(
            f"| {name} | {d['utterances']} | {d['audio_seconds'] / 3600:.3f} | {_fmt(d['wer_percent'])} | "
            f"{d['word_errors']} / {d['reference_words']} | {_fmt(d['rtfx'])} | {_fmt(d['rtfx_job'])} | "
            f"{d['dropped_unscorable']} | {failed} |")
    problems = [f"* **{name}**: {d['error']}" for name, d in data.items() if d.get("error")]
    if problems:
        lines += ["", "## Failed datasets", "", *problems]
    lines += [
        "", f"Audio {report['audio_seconds'] / 3600:.3f} h; job wall time {report['wall_seconds']:.1f} s "
        f"(RTFx of the whole job {_fmt(report['rtfx_job'])}). RTFx = audio seconds / seconds of feature "
        "extraction + model + text decoding (audio decoding, model load and warm-up excluded).",
        "", f"![WER per dataset]({CHART_NAME})", ""]
    return "\n".join(lines)


def chart_png(report: dict) -> bytes:
    """Bar chart of WER % per dataset (value on each bar, failed sets marked), the mean as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    values = [d.get("wer_percent") for d in report["datasets"].values()]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2.5), 4.2))
    bars = ax.bar(names, [v or 0.0 for v in values], color="#4477aa")
    ax.bar_label(bars, labels=["failed" if v is None else f"{v:.2f}" for v in values], padding=2)
    if report.get("mean_wer_percent") is not None:
        ax.axhline(report["mean_wer_percent"], color="#cc6677", linestyle="--",
                   label=f"average {report['mean_wer_percent']:.2f}")
        ax.legend(loc="upper right")
    ax.set_ylabel("WER (%)")
    ax.set_xlabel("dataset")
    ax.set_ylim(0, max([v or 0.0 for v in values] + [1.0]) * 1.18)
    ax.set_title(f"{model_label(report)} · {report['normalizer']} normaliser · RTFx {_fmt(report['rtfx'])}",
                 fontsize=9)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
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
