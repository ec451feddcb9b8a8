"""Transcribe a corpus to Parquet.

    python -m jobs.transcribe --input s3://bkt/corpus/ --output s3://bkt/out/run1
    ray job submit --working-dir . -- python -m jobs.transcribe --input … --output …

Exits non-zero only when the job itself fails; bad files become rows with ``error`` set. A
mistake the user can fix (a missing input, an unwritable output, a folder that is no checkpoint,
storage that stayed unreachable) is one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from jobs._common import (
    OneLineParser, add_audio_args, add_cluster_args, add_model_args, add_storage_args, model_options, resolve_job_model,
    run_job,
)
from pipeline.config import DEFAULT_MAX_FRAMES_PER_PACK, FORMATS, NORMALIZERS, SourceColumns, \
    TranscribeConfig, parse_channel

MODULE = "jobs.transcribe"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--input", action="append", required=True, metavar="URI",
                        help="folder/prefix of audio, manifest (.jsonl/.csv/.tsv), Parquet or tar "
                             "shards, LibriSpeech tree, Kaldi data dir; local, s3:// or any "
                             "fsspec URI; repeatable")
    parser.add_argument("--output", required=True, metavar="URI", help="output folder or prefix")
    parser.add_argument("--format", choices=FORMATS, default="auto")
    parser.add_argument("--audio-column", default=None,
                        help="manifest: audio_filepath|audio|path; Parquet: audio")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--duration-column", default="duration",
                        help="manifest: seconds of the span to decode (NeMo; default: duration)")
    parser.add_argument("--offset-column", default="offset",
                        help="manifest: start of that span in seconds (NeMo; default: offset)")
    parser.add_argument("--audio-root", default=None, metavar="URI",
                        help="base for relative audio paths in manifests and Kaldi wav.scp "
                             "(e.g. Common Voice's clips/; default: the manifest's folder)")
    add_model_args(parser)
    add_cluster_args(parser)
    add_audio_args(parser)
    parser.add_argument("--normalizer", choices=NORMALIZERS, default="leaderboard",
                        help="text normalisation before WER (default: leaderboard, the Open ASR "
                             "Leaderboard's English rules, as jobs.evaluate scores)")
    add_storage_args(parser)
    parser.add_argument("--resume", action="store_true", help="add only ids not yet written")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results")
    parser.add_argument("--with-audio", action="store_true",
                        help="keep the compressed audio bytes in an `audio` column")
    return parser


def config_from_args(args: argparse.Namespace) -> TranscribeConfig:
    return TranscribeConfig(
        inputs=tuple(args.input), output=args.output, format=args.format, model=args.model,
        revision=args.revision, editing_steps=args.editing_steps, device=args.device,
        dtype=args.dtype, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
        cpus_per_actor=args.cpus_per_actor,
        max_frames_per_pack=args.max_frames_per_pack or DEFAULT_MAX_FRAMES_PER_PACK,
        max_duration_seconds=args.max_duration_seconds,
        max_segment_seconds=args.max_segment_seconds, silence_dbfs=args.silence_dbfs,
        channel=parse_channel(args.channel),
        normalizer=args.normalizer, s3_endpoint=args.s3_endpoint, resume=args.resume,
        overwrite=args.overwrite, with_audio=args.with_audio, audio_root=args.audio_root,
        columns=SourceColumns(audio=args.audio_column, text=args.text_column, id=args.id_column,
                              duration=args.duration_column, offset=args.offset_column),
        **model_options(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)

    def body() -> None:
        from pipeline.run import run_transcribe

        config = config_from_args(args)
        run_transcribe(config, resolve_job_model(config))

    return run_job(body, argv, MODULE)


if __name__ == "__main__":
    sys.exit(main())
