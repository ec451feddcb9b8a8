"""Pseudo-label a corpus: transcribe, score each label (confidence, draft/edit disagreement), filter.

    python -m jobs.pseudo_label --input s3://bkt/unlabelled/ --output s3://bkt/pl/run1 \\
        --min-confidence 0.9 --max-draft-disagreement 0.2 --min-duration 1 --max-duration 30 --with-audio

Writes OUT/transcripts/ (the transcribe columns), OUT/scored/ (+ draft_disagreement, keep,
reject_reason), OUT/kept/ (HF audio-layout Parquet of the kept rows), OUT/kept_manifest.jsonl (NeMo),
OUT/histograms.png and OUT/_pseudo_label_summary.json.
"""

from __future__ import annotations

import argparse
import posixpath
import sys

from jobs._common import add_cluster_args, add_model_args, add_storage_args, fail, with_test_model
from pipeline.config import DEFAULT_MAX_FRAMES_PER_PACK, FORMATS, NORMALIZERS, ConfigError, SourceColumns, \
    TranscribeConfig
from pipeline.model_ref import ModelUnavailable, resolve_model

MODULE = "jobs.pseudo_label"
ROW_COLUMNS = ["id", "source", "duration_s", "text", "draft_text", "token_ids", "confidence", "reference", "error",
               "model"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--input", action="append", required=True, metavar="URI", help="as for jobs.transcribe")
    p.add_argument("--output", required=True, metavar="URI")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--audio-column", default=None)
    p.add_argument("--id-column", default="id")
    p.add_argument("--existing-text-column", default="text",
                   help="column of an existing (noisy) transcript, compared with --max-wer (default: text)")
    f = p.add_argument_group("filters")
    f.add_argument("--min-confidence", type=float, default=None)
    f.add_argument("--max-draft-disagreement", type=float, default=None)
    f.add_argument("--min-duration", type=float, default=None, help="seconds")
    f.add_argument("--max-duration", type=float, default=None, help="seconds")
    f.add_argument("--max-wer", type=float, default=None, help="against --existing-text-column, when present")
    add_model_args(p)
    add_cluster_args(p)
    p.add_argument("--normalizer", choices=NORMALIZERS, default="english")
    p.add_argument("--max-segment-seconds", type=float, default=40.0)
    add_storage_args(p)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--with-audio", action="store_true", help="carry audio bytes into the kept HF-layout Parquet")
    return p


def main(argv: list[str] | None = None) -> int:
    from pipeline.output import read_columns
    from pipeline.pseudo import Filters, counts, score_and_filter, write_outputs
    from pipeline.run import run_transcribe
    from pipeline.storage import Storage

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    out = args.output.rstrip("/")
    try:
        for name in ("min_confidence", "max_draft_disagreement", "max_wer"):
            value = getattr(args, name)
            if value is not None and not 0 <= value <= 10:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        filters = Filters(args.min_confidence, args.max_draft_disagreement, args.min_duration, args.max_duration,
                          args.max_wer)
        config = TranscribeConfig(
            inputs=tuple(args.input), output=posixpath.join(out, "transcripts"), format=args.format,
            model=args.model, revision=args.revision, editing_steps=args.editing_steps, device=args.device,
            dtype=args.dtype, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
            cpus_per_actor=args.cpus_per_actor,
            max_frames_per_pack=args.max_frames_per_pack or DEFAULT_MAX_FRAMES_PER_PACK,
            max_segment_seconds=args.max_segment_seconds, normalizer=args.normalizer,
            s3_endpoint=args.s3_endpoint, resume=args.resume, overwrite=args.overwrite, with_audio=args.with_audio,
            columns=SourceColumns(audio=args.audio_column, text=args.existing_text_column, id=args.id_column))
        spec = resolve_model(config.model, config.revision, config.device, config.dtype)
    except ConfigError as e:
        return fail(str(e))
    except ModelUnavailable as e:
        print(f"{e}; to try the job with the random test checkpoint (nonsense text): "
              f"{with_test_model(argv, MODULE)}", file=sys.stderr)
        return 1
    try:
        run_transcribe(config, spec)
    except ConfigError as e:
        return fail(str(e))
    storage = Storage.from_env(args.s3_endpoint)
    columns = ROW_COLUMNS + (["audio"] if args.with_audio else [])
    rows = score_and_filter(read_columns(storage, config.output, columns).to_pylist(), filters, args.normalizer)
    summary = {**counts(rows), "filters": filters.__dict__, "model": spec.name_or_path}
    fs, root = storage.filesystem(out)
    write_outputs(fs, root, rows, summary)
    print(f"\npseudo-labels: kept {summary['kept']} of {summary['rows']} "
          f"({summary['kept_audio_seconds']:.1f} s of audio); rejected by rule: {summary['rejected_by'] or 'none'}")
    print(f"kept set: {out}/kept/ (HF audio Parquet), {out}/kept_manifest.jsonl (NeMo); scored: {out}/scored/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
