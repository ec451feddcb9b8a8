"""The command line: every flag of design.md parses into the config (no Ray, no model)."""

import pytest

from jobs._common import with_test_model
from jobs.transcribe import build_parser, config_from_args
from pipeline.config import DEFAULT_MODEL


def test_all_documented_flags_reach_the_config():
    argv = ["--input", "s3://b/a", "--input", "/local/b", "--output", "s3://b/out",
            "--format", "webdataset", "--model", "org/name", "--revision", "abc123",
            "--editing-steps", "2", "--device", "cpu", "--dtype", "bfloat16", "--actors", "2,4",
            "--gpus-per-actor", "0.5", "--cpus-per-actor", "3", "--max-frames-per-pack", "4000",
            "--max-duration-seconds", "600", "--max-segment-seconds", "30",
            "--silence-dbfs", "-50", "--normalizer", "basic", "--s3-endpoint", "http://h:9000",
            "--resume", "--with-audio", "--audio-column", "wav", "--text-column", "sentence",
            "--id-column", "key"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.inputs == ("s3://b/a", "/local/b") and config.output == "s3://b/out"
    assert (config.format, config.model, config.revision, config.editing_steps) == \
        ("webdataset", "org/name", "abc123", 2)
    assert (config.device, config.dtype, config.actors) == ("cpu", "bfloat16", (2, 4))
    assert (config.gpus_per_actor, config.cpus_per_actor, config.max_frames_per_pack) == \
        (0.5, 3.0, 4000)
    assert (config.max_duration_seconds, config.max_segment_seconds, config.silence_dbfs) == \
        (600.0, 30.0, -50.0)
    assert (config.normalizer, config.s3_endpoint) == ("basic", "http://h:9000")
    assert config.resume and config.with_audio and not config.overwrite
    assert (config.columns.audio, config.columns.text, config.columns.id) == \
        ("wav", "sentence", "key")


def test_defaults():
    config = config_from_args(build_parser().parse_args(["--input", "x", "--output", "y"]))
    assert (config.model, config.editing_steps, config.max_duration_seconds,
            config.max_segment_seconds, config.silence_dbfs, config.normalizer) == \
        (DEFAULT_MODEL, 1, 3600.0, 40.0, -60.0, "english")
    assert config.actors is None and config.gpus_per_actor is None


def test_bad_actors_flag_is_a_usage_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--input", "x", "--output", "y", "--actors", "many"])


def test_fallback_command_swaps_the_model():
    assert with_test_model(["--input", "examples", "--model=org/x", "--output", "o"],
                           "jobs.transcribe") == \
        "python -m jobs.transcribe --input examples --output o --model tests/fixtures/granite-nar-tiny"
