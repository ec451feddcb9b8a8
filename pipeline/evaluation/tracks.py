"""The leaderboard's tracks and the averages each prints (``huggingface/open_asr_leaderboard``).

* ``english`` (short-form, ``--datasets leaderboard``): per-set WER %, ``Average`` = the mean of the
  rounded per-set values, RTFx.
* ``multilingual`` (``--datasets leaderboard-multilingual``): one block per language (the
  leaderboard's ``score_results`` families ``ml_<lang>``: per-set WER and their mean), and the
  average over every config run.
* ``longform`` (``--datasets leaderboard-longform``; ``scripts/score_longform_results.py``): per-set
  WER, recordings, hours and segments; ``coraal_avg`` = the mean of the sets of group ``coraal``;
  ``Average`` = the mean of the other sets and ``coraal_avg`` (one entry for all of CORAAL);
  ``Avg (without CORAAL)`` = the mean of the other sets.
* ``custom``: sets given with ``--dataset`` or a file without ``track:``; their plain mean.

RTFx of a track = Σ audio seconds / Σ (feature extraction + model + text decoding) seconds over its
sets (the leaderboard's definition; audio decoding, model load and warm-up excluded).
"""

from __future__ import annotations

from pipeline.evaluation.metrics import mean_wer_percent

TRACK_ORDER = ("english", "multilingual", "longform", "custom")
# The shipped dataset files of the leaderboard's tracks (``pipeline/evaluation/datasets/``).
LEADERBOARD_FILES = ("leaderboard", "leaderboard-multilingual", "leaderboard-longform")
# What the leaderboard ran for Granite Speech 4.1 2B NAR (granite/submit_jobs_nar*.sh: REVISION), with
# the checkpoint's own (hub) code: runs of a shipped track use both unless told otherwise.
LEADERBOARD_REVISION = "99a4df9007ac5682f9daa093fb7008ff606e9a5d"
LEADERBOARD_NUMERICS = "hub"


def track_of(spec) -> str:
    """The track a :class:`~pipeline.evaluation.specs.DatasetSpec` reports under."""
    return spec.track or "custom"


def _wer(entries: dict[str, dict]) -> dict[str, float | None]:
    return {name: d.get("wer_percent") for name, d in entries.items()}


def _average(entries: dict[str, dict]) -> float | None:
    return mean_wer_percent([d["wer_percent"] for d in entries.values() if d.get("wer_percent") is not None])


def _rtfx(entries: dict[str, dict]) -> float | None:
    timed = [d for d in entries.values() if d.get("rtfx") is not None]
    seconds = sum(d["model_seconds"] for d in timed)
    return round(sum(d["audio_seconds"] for d in timed) / seconds, 2) if seconds > 0 else None


def _plain_block(entries: dict[str, dict]) -> dict:
    return {"datasets": list(entries), "wer_percent": _wer(entries),
            "average_wer_percent": _average(entries), "rtfx": _rtfx(entries)}


def multilingual_block(entries: dict[str, dict]) -> dict:
    """Per language (in order of appearance) its sets' WER and mean; then the mean over all sets."""
    languages: dict[str, dict[str, dict]] = {}
    for name, d in entries.items():
        languages.setdefault(d.get("language") or "en", {})[name] = d
    return {**_plain_block(entries),
            "languages": {lang: _plain_block(sets) for lang, sets in languages.items()}}


def longform_block(entries: dict[str, dict]) -> dict:
    """The long-form table's figures (module docstring) plus recordings, hours and segments per set."""
    groups: dict[str, dict[str, dict]] = {}
    main: dict[str, dict] = {}
    for name, d in entries.items():
        if d.get("group"):
            groups.setdefault(d["group"], {})[name] = d
        else:
            main[name] = d
    group_avgs = {g: _average(sets) for g, sets in groups.items()}
    main_values = [d["wer_percent"] for d in main.values() if d.get("wer_percent") is not None]
    with_groups = main_values + [v for v in group_avgs.values() if v is not None]
    return {
        **_plain_block(entries),
        "group_average_wer_percent": group_avgs,
        "average_wer_percent": mean_wer_percent(with_groups),
        "average_without_groups_wer_percent": mean_wer_percent(main_values),
        "recordings": {n: d.get("utterances") for n, d in entries.items()},
        "audio_hours": {n: round(d["audio_seconds"] / 3600, 4) if d.get("audio_seconds") is not None
                        else None for n, d in entries.items()},
        "segments": {n: d.get("segments") for n, d in entries.items()},
    }


def summarize_tracks(datasets: dict[str, dict]) -> dict:
    """``report.json``'s ``tracks``: one block per track present, in :data:`TRACK_ORDER`."""
    by_track: dict[str, dict[str, dict]] = {}
    for name, d in datasets.items():
        by_track.setdefault(d.get("track") or "custom", {})[name] = d
    blocks = {}
    for track in TRACK_ORDER:
        if track not in by_track:
            continue
        entries = by_track[track]
        if track == "multilingual":
            blocks[track] = multilingual_block(entries)
        elif track == "longform":
            blocks[track] = longform_block(entries)
        else:
            blocks[track] = _plain_block(entries)
    return blocks
