"""The model flags every job shares: --numerics, --timestamps, --subtitles, --features-on."""

import pytest

from jobs import transcribe
from pipeline.config import ConfigError, TranscribeConfig


def _config(*flags):
    args = transcribe.build_parser().parse_args(["--input", "in", "--output", "out", *flags])
    return transcribe.config_from_args(args)


def test_defaults_leave_the_profile_to_the_checkpoint():
    config = _config()
    assert (config.numerics, config.timestamps, config.subtitles, config.features_on) == \
        (None, "none", (), "cpu")
    assert config.settings()["numerics"] is None


def test_flags_reach_the_config_and_its_recorded_settings():
    config = _config("--numerics", "hub", "--subtitles", "srt,VTT,srt", "--features-on", "accelerator")
    assert config.numerics == "hub"
    assert config.subtitles == ("srt", "vtt")
    assert config.timestamps == "word"  # subtitles need word times
    assert config.settings()["subtitles"] == ["srt", "vtt"]
    assert config.settings()["features_on"] == "accelerator"


def test_bad_values_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _config("--subtitles", "srt,ass")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: argument --subtitles: --subtitles takes a comma-separated list of srt, vtt, ctm, got "
        "'srt,ass'; see python -m jobs.transcribe --help"]
    with pytest.raises(ConfigError, match="--numerics 'pr' is not one of hub, transformers"):
        TranscribeConfig(inputs=("in",), output="out", numerics="pr")
