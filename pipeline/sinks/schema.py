"""Arrow schemas of the stages and of the written Parquet (the output contract in design.md)."""

from __future__ import annotations

import pyarrow as pa

# Where each segment of the input lies (one entry for inputs that fit in one segment).
# The span of its file an input is (NeMo offset/duration, Kaldi segments), in seconds of the file;
# null for a whole file (``end_s`` null alone: to the end of the file).
SPAN_FIELDS = [pa.field("start_s", pa.float64()), pa.field("end_s", pa.float64())]
# The channel of the file that was transcribed (0-based: a ``channel`` field, ``--channel``);
# null: the mean of its channels.
CHANNEL_FIELD = pa.field("channel", pa.int32())
SEGMENTS_FIELD = pa.field("segments", pa.list_(pa.struct([("start_s", pa.float64()), ("end_s", pa.float64())])))
# --timestamps (pipeline/stages/timestamps.py): word times in seconds of the file, what happened per
# row, and each segment's text (parallel to ``segments``); null without the flag.
WORD_TYPE = pa.struct([("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                       ("confidence", pa.float32())])
TIMESTAMP_FIELDS = [pa.field("words", pa.list_(WORD_TYPE)), pa.field("timestamps_status", pa.string()),
                    pa.field("segment_texts", pa.list_(pa.string()))]

# The contract: these names and types, in this order, first.
OUTPUT_FIELDS = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("text", pa.string()),
    pa.field("draft_text", pa.string()),
    pa.field("token_ids", pa.list_(pa.int32())),
    pa.field("confidence", pa.float32()),
    pa.field("reference", pa.string()),
    pa.field("wer_errors", pa.int32()),
    pa.field("wer_words", pa.int32()),
    pa.field("error", pa.string()),
    pa.field("model", pa.string()),
]
# Extra columns: whether the model was skipped for silence, and where each stage ran.
EXTRA_FIELDS = [
    pa.field("numerics", pa.string()),   # the numerics profile that ran: "hub" or "transformers"
    pa.field("silent", pa.bool_()),
    pa.field("decode_node", pa.string()),
    pa.field("infer_node", pa.string()),
    SEGMENTS_FIELD,
    *SPAN_FIELDS,
    CHANNEL_FIELD,
    *TIMESTAMP_FIELDS,
    # Model time the leaderboard way: log-mel features on the CPU, and this row's share of its packs'
    # inference + text decoding (the actors warm up before their first batch). Audio decoding is
    # timed apart (decode_seconds): the leaderboard's RTFx excludes it.
    pa.field("features_seconds", pa.float64()),
    pa.field("infer_seconds", pa.float64()),
    pa.field("decode_seconds", pa.float64()),
    # The accelerator busy fraction's inputs: which actor ran the row, when it started (before its
    # model loaded) and when the row's batch ended, in Unix-epoch seconds, and the row's share of
    # its actor's warm-up forwards (null outside them) (pipeline/stages/inference.py).
    pa.field("infer_actor", pa.string()),
    pa.field("infer_actor_start", pa.float64()),
    pa.field("infer_batch_end", pa.float64()),
    pa.field("infer_warmup_seconds", pa.float64()),
]
AUDIO_FIELD = pa.field("audio", pa.binary())

DECODED_FIELDS = [
    pa.field("id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("reference", pa.string()),
    pa.field("error", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("features", pa.binary()),     # float32 [num_frames, 160], C order
    pa.field("num_frames", pa.int32()),
    pa.field("segment_frames", pa.list_(pa.int32())),  # frames of each segment, in order (sum = num_frames)
    # --features-on accelerator: the 16 kHz float32 samples of the segments end to end instead of
    # ``features`` (large: an hour of audio is 230 MB), and each segment's sample count.
    pa.field("samples", pa.large_binary()),
    pa.field("segment_samples", pa.list_(pa.int64())),
    SEGMENTS_FIELD,
    *SPAN_FIELDS,
    CHANNEL_FIELD,
    pa.field("silent", pa.bool_()),
    pa.field("decode_node", pa.string()),
    pa.field("features_seconds", pa.float64()),
    pa.field("decode_seconds", pa.float64()),
]


def output_schema(with_audio: bool = False) -> pa.Schema:
    return pa.schema(OUTPUT_FIELDS + EXTRA_FIELDS + ([AUDIO_FIELD] if with_audio else []))


def decoded_schema(with_audio: bool = False) -> pa.Schema:
    return pa.schema(DECODED_FIELDS + ([AUDIO_FIELD] if with_audio else []))


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as a table of exactly ``schema`` (missing keys are null)."""
    return pa.Table.from_pylist(rows, schema=schema)
