"""Pseudo-label a corpus: transcribe, score each label, filter, write a training-ready kept set.

    python -m jobs.pseudo_label --input s3://bkt/unlabelled/ --output s3://bkt/pl/run1 \\
        --min-confidence 0.9 --max-draft-disagreement 0.2 --min-label-seconds 1 --max-label-seconds 30

Writes under OUT: transcripts/ (the transcribe columns, with the audio bytes), scored/ (+
draft_disagreement, language, language_confidence, loop and rate columns, keep, reject_reason,
kept_audio), kept_audio/ (each kept label's audio as
16 kHz mono FLAC), kept/ (HF datasets Parquet, audio bytes inside), kept_manifest/ (NeMo JSON-lines
manifests), kept_wds/ (WebDataset tars, with --kept-format webdataset), histograms.png and
_pseudo_label_summary.json. Every filter is off unless its flag is given.

Refusing an input is not filtering a label: --max-duration-seconds refuses an input before it is
decoded (an error row, no transcript); --max-label-seconds drops a finished transcript from the
kept set (reject_reason too_long) and it stays in scored/.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from dataclasses import replace

from jobs import transcribe
from jobs._common import resolve_job_model, run_job
from pipeline.config import ConfigError

MODULE = "jobs.pseudo_label"
SUMMARY_NAME = "_pseudo_label_summary.json"
DEFAULT_KEPT_FORMATS = "hf,nemo"


def add_filter_args(parser: argparse.ArgumentParser) -> None:
    f = parser.add_argument_group(
        "label filters (each is off unless given; a rejected row stays in scored/ with its "
        "reject_reason)")
    f.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="keep labels whose model confidence (0-1) is at least P; unset: off")
    f.add_argument("--max-draft-disagreement", type=float, default=None, metavar="F",
                   help="keep labels whose final text differs from the encoder's draft by at most "
                        "F (word edits / longer text, 0-1); unset: off")
    f.add_argument("--min-label-seconds", "--min-duration", dest="min_label_seconds", type=float,
                   default=None, metavar="S",
                   help="keep labels of at least S seconds of audio (reject_reason too_short); "
                        "unset: off. --min-duration is the old name")
    f.add_argument("--max-label-seconds", "--max-duration", dest="max_label_seconds", type=float,
                   default=None, metavar="S",
                   help="keep labels of at most S seconds of audio (reject_reason too_long); "
                        "unset: off. It filters a finished transcript, unlike "
                        "--max-duration-seconds, which refuses an input before decoding it. "
                        "--max-duration is the old name")
    f.add_argument("--max-wer", type=float, default=None, metavar="F",
                   help="keep labels whose WER (fraction) against the existing transcript in "
                        "--text-column is at most F; a row whose transcript normalises to nothing "
                        "(empty, fillers, [tags]) is rejected as no_reference (distil-whisper's "
                        "rule); same --normalizer as the WER; unset: off")
    t = parser.add_argument_group(
        "language, loop and rate filters (NeMo SDP Granary, NeMo Curator, OWSM v4; each is off "
        "unless given)")
    t.add_argument("--languages", default=None, metavar="LIST",
                   help="keep labels whose detected language (py3langid, ISO 639-1) is one of LIST, "
                        "e.g. en,de (reject_reason language); unset: off")
    t.add_argument("--expected-language", default=None, metavar="CODE",
                   help="reject labels whose detected language is not CODE, e.g. de for a German "
                        "crawl (language_mismatch, as OWSM v4); unset: off")
    t.add_argument("--expected-language-column", default=None, metavar="NAME",
                   help="the same with each row's own expected language, read from column NAME of "
                        "the transcripts (rows where it is empty fall back to --expected-language); "
                        "unset: off")
    t.add_argument("--max-repeat-ratio", type=float, default=None, metavar="F",
                   help="reject labels whose share of repeated words, 1 - unique words / words, is "
                        "above F (repeat_ratio; SDP Granary's unique_words_threshold 0.4 is F=0.6); "
                        "unset: off")
    t.add_argument("--max-ngram-repeats", type=int, default=None, metavar="K",
                   help="reject labels in which one n-gram (1-16 words) occurs more than K times "
                        "back to back (ngram_repeats, a decoding loop); unset: off")
    t.add_argument("--max-word-length", default=None, metavar="N[,LANG=M...]",
                   help="reject labels whose longest word has more than N characters (long_word; "
                        "SDP Granary uses 25); compounding languages (de, nl, sv, da, no, fi, ...) "
                        "get 1.6 N unless given their own bound, e.g. 25,de=45; unset: off")
    t.add_argument("--chars-per-second", default=None, metavar="MIN,MAX",
                   help="reject labels whose characters per second of audio lie outside "
                        "[MIN, MAX] (char_rate; SDP DropHighLowCharrate; either side may be "
                        "empty, e.g. ,25); unset: off")
    t.add_argument("--words-per-second", default=None, metavar="MIN,MAX",
                   help="reject labels whose words per second of audio lie outside [MIN, MAX] "
                        "(word_rate; SDP DropHighLowWordrate); unset: off")
    t.add_argument("--drop-lowest-confidence", type=float, default=None, metavar="F",
                   help="after every other rule, drop the lowest fraction F of the kept labels by "
                        "confidence within each detected language (lowest_confidence; OWSM v4 "
                        "drops 0.1); thresholds in the summary; unset: off")
    parser.add_argument("--kept-format", default=DEFAULT_KEPT_FORMATS, metavar="LIST",
                        help="comma-separated layouts of the kept set: hf (Parquet, "
                             "datasets' Audio layout), nemo (JSON-lines manifests), webdataset "
                             f"(tar shards) (default: {DEFAULT_KEPT_FORMATS})")


def build_parser() -> argparse.ArgumentParser:
    """The transcribe flags (inputs, model, cluster, storage, audio limits) plus the label filters."""
    p = transcribe.build_parser()
    p.prog, p.description = f"python -m {MODULE}", __doc__.split("\n")[0]
    add_filter_args(p)
    return p


def parse_formats(text: str) -> tuple[str, ...]:
    from pipeline.pseudo_label.kept_set import KEPT_FORMATS

    formats = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in KEPT_FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--kept-format {text!r}: use a comma-separated list of "
                          f"{', '.join(KEPT_FORMATS)}")
    return formats


def _language_codes(flag: str, text: str) -> tuple[str, ...]:
    from pipeline.pseudo_label.language import known_languages, language_code

    codes = tuple(dict.fromkeys(c for c in (language_code(x) for x in text.split(",")) if c))
    unknown = [c for c in codes if c not in known_languages()]
    if unknown or not codes:
        raise ConfigError(f"{flag} {text!r}: use ISO 639-1 codes such as en,de,fr "
                          f"({'unknown: ' + ', '.join(unknown) if unknown else 'none given'})")
    return codes


def parse_range(flag: str, text: str | None) -> tuple[float | None, float | None] | None:
    """``"MIN,MAX"`` (either side may be empty, not both) → (MIN, MAX); ``None`` → ``None``."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2 or not any(parts):
            raise ValueError
        low, high = (float(p) if p else None for p in parts)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: use MIN,MAX in units per second, e.g. 4,25 "
                          "(either side may be empty)") from None
    if (low is not None and low < 0) or (high is not None and high < 0) or \
            (low is not None and high is not None and low > high):
        raise ConfigError(f"{flag} {text!r}: MIN and MAX must be >= 0 and MIN <= MAX")
    return low, high


def parse_word_length(text: str | None) -> tuple[int | None, tuple[tuple[str, int], ...]]:
    """``"25"`` / ``"25,de=45"`` / ``"de=45"`` → (bound, ((language, bound), ...))."""
    if text is None:
        return None, ()
    from pipeline.pseudo_label.language import language_code

    bound, own = None, {}
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if "=" in part:
                lang, value = part.split("=", 1)
                own[_language_codes("--max-word-length", lang)[0]] = int(value)
            else:
                bound = int(part)
        if (bound is None and not own) or (bound is not None and bound < 1) or \
                any(v < 1 for v in own.values()):
            raise ValueError
    except ValueError:
        raise ConfigError(f"--max-word-length {text!r}: use N or N,LANG=M with whole numbers of "
                          "characters >= 1, e.g. 25,de=45") from None
    return bound, tuple(sorted((language_code(k), v) for k, v in own.items()))


def filters_from_args(args: argparse.Namespace):
    from pipeline.pseudo_label.filters import Filters

    for name in ("min_confidence", "max_draft_disagreement", "min_label_seconds",
                 "max_label_seconds", "max_wer", "max_ngram_repeats"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    if args.max_repeat_ratio is not None and not 0 <= args.max_repeat_ratio <= 1:
        raise ConfigError(f"--max-repeat-ratio must be between 0 and 1, got {args.max_repeat_ratio}")
    if args.drop_lowest_confidence is not None and not 0 < args.drop_lowest_confidence < 1:
        raise ConfigError("--drop-lowest-confidence must be a fraction between 0 and 1 (0.1 drops "
                          f"the lowest 10 %), got {args.drop_lowest_confidence}")
    bound, own = parse_word_length(args.max_word_length)
    return Filters(
        min_confidence=args.min_confidence, max_draft_disagreement=args.max_draft_disagreement,
        min_label_seconds=args.min_label_seconds, max_label_seconds=args.max_label_seconds,
        max_wer=args.max_wer,
        languages=None if args.languages is None else _language_codes("--languages", args.languages),
        expected_language=None if args.expected_language is None else
        _language_codes("--expected-language", args.expected_language)[0],
        expected_language_column=args.expected_language_column,
        max_repeat_ratio=args.max_repeat_ratio, max_ngram_repeats=args.max_ngram_repeats,
        max_word_length=bound, max_word_length_by_language=own,
        chars_per_second=parse_range("--chars-per-second", args.chars_per_second),
        words_per_second=parse_range("--words-per-second", args.words_per_second),
        drop_lowest_confidence=args.drop_lowest_confidence)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    return run_job(lambda: pseudo_label(args), argv, MODULE)


def pseudo_label(args: argparse.Namespace) -> dict:
    from pipeline.pseudo_label.kept_set import (
        FORMAT_DIRS, SCORED_DIR, build_kept_set, clear_derived, has_derived,
    )
    from pipeline.pseudo_label.stats import filter_stats
    from pipeline.run import run_transcribe
    from pipeline.sinks.atomic_fs import write_bytes_atomically
    from pipeline.storage import Storage, is_remote

    out = args.output.rstrip("/")
    filters = filters_from_args(args)
    formats = parse_formats(args.kept_format)
    storage = Storage.from_env(args.s3_endpoint)
    # The audio bytes ride along with the transcripts, so the kept set never reads the corpus twice.
    config = replace(transcribe.config_from_args(args), output=posixpath.join(out, "transcripts"),
                     with_audio=True)
    if not (args.resume or args.overwrite) and has_derived(storage, out):
        raise ConfigError(f"--output {out} already holds a kept set; pass --resume to finish the "
                          "transcripts and rebuild it, or --overwrite to start over")
    spec = resolve_job_model(config)
    transcribed = run_transcribe(config, spec)
    clear_derived(storage, out)   # the kept set is rebuilt from all transcripts: no duplicates
    cuts = build_kept_set(storage, out, filters, args.normalizer, formats)
    summary, png = filter_stats(storage, out, SCORED_DIR, filters, cuts)
    fs, root = storage.filesystem(out)
    written = [f for f in formats if _exists(fs, posixpath.join(root, FORMAT_DIRS[f]))]
    summary.update(filters=filters.as_dict(), kept_formats=list(formats),
                   layouts={f: f"{out}/{FORMAT_DIRS[f]}/" for f in written},
                   model=transcribed["model"], rows_inferred=transcribed["rows_inferred"])
    if cuts is not None:
        summary["thresholds"] = {
            "lowest_confidence": {"fraction": filters.drop_lowest_confidence,
                                  "confidence_by_language": cuts,
                                  "definition": QUANTILE_DEFINITION}}
    for name, data in (("histograms.png", png),
                       (SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True).encode())):
        target = posixpath.join(root, name)
        if is_remote(out):
            fs.pipe_file(target, data)
        else:
            write_bytes_atomically(target, data)
    print(format_summary(summary, out))
    from pipeline.cluster import results_line

    print(results_line(out))
    return summary


QUANTILE_DEFINITION = ("numpy.quantile(method='linear') of float32 confidences as float64, over "
                       "the labels of that language every other rule kept; a label below it is cut")
# Languages listed one per line on the console; the summary file has them all.
CONSOLE_LANGUAGES = 8


def _exists(fs, path: str) -> bool:
    fs.invalidate_cache(path)
    return fs.exists(path)


def format_summary(summary: dict, out: str) -> str:
    """The console's summary: kept and rejected rows and hours per rule and per language, the
    confidence cut's thresholds, and only the layouts that were written."""
    lines = ["── pseudo-label summary " + "─" * 40,
             f"kept            {summary['kept']} of {summary['rows']} "
             f"({summary['kept_hours']:.3f} h of audio)"]
    for reason, value in summary["rejected_by"].items():
        lines.append(f"  rejected ×{value['rows']:<6} {reason:<20} {value['hours']:.3f} h")
    languages = summary.get("by_language", {})
    for lang, value in list(languages.items())[:CONSOLE_LANGUAGES]:
        lines.append(f"  language {lang:<8} kept {value['kept']} of {value['rows']} "
                     f"({value['kept_hours']:.3f} h)")
    if len(languages) > CONSOLE_LANGUAGES:
        lines.append(f"  … {len(languages) - CONSOLE_LANGUAGES} more languages in {SUMMARY_NAME}")
    cut = summary.get("thresholds", {}).get("lowest_confidence")
    if cut:
        values = ", ".join(f"{k} {v:.4g}" for k, v in cut["confidence_by_language"].items()) or "none"
        lines.append(f"  lowest {cut['fraction']:.0%} cut at confidence {values}")
    for fmt, path in summary["layouts"].items():
        lines.append(f"{fmt:<15} {path}")
    if not summary["layouts"]:
        lines.append("kept set        none written: no label passed the filters")
    lines.append(f"picture         {out}/histograms.png")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
