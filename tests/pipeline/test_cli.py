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
        (DEFAULT_MODEL, 1, 3600.0, 40.0, -60.0, "leaderboard")
    assert config.actors is None and config.gpus_per_actor is None


def test_bad_actors_flag_is_a_usage_error():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--input", "x", "--output", "y", "--actors", "many"])


def test_fallback_command_swaps_the_model():
    assert with_test_model(["--input", "examples", "--model=org/x", "--output", "o"],
                           "jobs.transcribe") == \
        "python -m jobs.transcribe --input examples --output o --model tests/fixtures/granite-nar-tiny"


def usage_error(capsys, parse) -> str:
    """The one stderr line of a usage mistake (exit status 2)."""
    with pytest.raises(SystemExit) as e:
        parse()
    assert e.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_abbreviated_flag_is_refused_with_the_real_one(capsys):
    line = usage_error(capsys, lambda: build_parser().parse_args(
        ["--input", "x", "--output", "y", "--editing-step", "2"]))
    assert line == ("error: unrecognized argument --editing-step (did you mean --editing-steps?); "
                    "see python -m jobs.transcribe --help")


def test_misspelt_required_flag_is_named_not_reported_missing(capsys):
    line = usage_error(capsys, lambda: build_parser().parse_args(
        ["--input", "x", "--ouput=y"]))
    assert line == ("error: unrecognized argument --ouput (did you mean --output?); "
                    "see python -m jobs.transcribe --help")
    line = usage_error(capsys, lambda: build_parser().parse_args(
        ["--input", "x", "--output", "y", "--zzzz"]))
    assert line == "error: unrecognized argument --zzzz; see python -m jobs.transcribe --help"


def test_negative_numbers_and_values_after_double_dash_are_not_flags():
    args = build_parser().parse_args(["--input", "x", "--output", "y", "--silence-dbfs", "-70"])
    assert args.silence_dbfs == -70.0


def test_benchmark_and_evaluate_mistakes_are_one_line(capsys):
    from jobs.benchmark import parse_args
    from jobs.evaluate import build_parser as evaluate_parser

    assert usage_error(capsys, lambda: parse_args(["--szie", "tiny"])) == \
        "error: unrecognized argument --szie (did you mean --size?); see python -m jobs.benchmark --help"
    assert usage_error(capsys, lambda: evaluate_parser().parse_args(
        ["--dataset", "a=b", "--output", "o", "--input", "x"])) == \
        "error: unrecognized argument --input (did you mean --dataset?); see python -m " \
        "jobs.evaluate --help"


def test_errors_name_the_jobs_own_flags():
    from jobs._common import own_flags

    message = "no utterances found in --input /d (empty manifest); point --input at the audio"
    assert own_flags(message, "jobs.evaluate") == \
        "no utterances found in --dataset /d (empty manifest); point --dataset at the audio"
    assert own_flags(message, "jobs.transcribe") == message
    assert own_flags("--input-column", "jobs.evaluate") == "--input-column"


def test_cluster_flags_parse():
    args = build_parser().parse_args(["--input", "x", "--output", "y", "--output-is-shared",
                                      "--verbose"])
    assert args.output_is_shared and args.verbose
