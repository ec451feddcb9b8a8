"""Evaluation report files: ``report.json``, a leaderboard-like ``report.md`` and a PNG chart."""

from __future__ import annotations

import io
import json
import posixpath

from pipeline.storage import Storage

CHART_NAME = "report.png"


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def _num(value, fmt: str = "{:.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def markdown(report: dict) -> str:
    lines = [
        "# Evaluation report",
        "",
        f"Model: `{report['model']}` · normaliser: `{report['normalizer']}` · "
        f"audio {report['audio_seconds'] / 3600:.3f} h in {report['wall_seconds']:.1f} s "
        f"(job RTFx {_num(report['rtfx'])}, model-time RTFx {_num(report['rtfx_model'])})",
        "",
        "| dataset | utterances | hours | WER % | RTFx | RTFx (model) | scored | empty refs | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d in report["datasets"].items():
        lines.append(
            f"| {name} | {d['utterances']} | {d['audio_seconds'] / 3600:.3f} | {_pct(d['wer'])} | "
            f"{_num(d['rtfx'])} | {_num(d['rtfx_model'])} | {d['scored']} | {d['empty_references']} | {d['failed']} |"
        )
    lines.append(f"| **mean** | | | **{_pct(report['mean_wer'])}** | | | | | |")
    lines += ["", f"![WER and RTFx per dataset]({CHART_NAME})", ""]
    return "\n".join(lines)


def chart_png(report: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    wer = [100 * (d["wer"] or 0.0) for d in report["datasets"].values()]
    rtfx = [d["rtfx"] or 0.0 for d in report["datasets"].values()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(6, 1.6 * len(names) + 3), 3.6))
    ax1.bar(names, wer, color="#4477aa")
    ax1.set_title("WER (%)")
    ax2.bar(names, rtfx, color="#66aa55")
    ax2.set_title("RTFx")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
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
