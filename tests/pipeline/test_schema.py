import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import ConfigError, TranscribeConfig, parse_actors, resolve_resources
from pipeline.stages.decode import BadAudio, DecodeSettings, check_duration, decode, header_duration, \
    is_silent, level_dbfs
from pipeline.sinks.schema import output_schema
from pipeline.scoring import make_normalizer, score_row, word_errors
from pipeline.sinks.summary import summarize

CONTRACT = [("id", pa.string()), ("source", pa.string()), ("duration_s", pa.float64()),
            ("text", pa.string()), ("draft_text", pa.string()),
            ("token_ids", pa.list_(pa.int32())), ("confidence", pa.float32()),
            ("reference", pa.string()), ("wer_errors", pa.int32()), ("wer_words", pa.int32()),
            ("error", pa.string()), ("model", pa.string())]


def test_output_schema_starts_with_the_contract():
    schema = output_schema()
    assert [(f.name, f.type) for f in schema][:len(CONTRACT)] == CONTRACT
    assert "audio" not in schema.names
    assert output_schema(with_audio=True).field("audio").type == pa.binary()


def test_config_validation_names_the_flag():
    with pytest.raises(ConfigError, match="--editing-steps"):
        TranscribeConfig(inputs=("x",), output="o", editing_steps=0)
    with pytest.raises(ConfigError, match="--resume and --overwrite"):
        TranscribeConfig(inputs=("x",), output="o", resume=True, overwrite=True)
    with pytest.raises(ConfigError, match="--actors"):
        TranscribeConfig(inputs=("x",), output="o", actors=(3, 2))
    assert parse_actors("2") == (2, 2) and parse_actors("1,4") == (1, 4)
    with pytest.raises(ConfigError, match="--actors"):
        parse_actors("a,b")


def test_resources_follow_the_cluster():
    config = TranscribeConfig(inputs=("x",), output="o")
    gpu = resolve_resources(config, {"CPU": 32, "GPU": 4})
    assert (gpu.min_actors, gpu.max_actors, gpu.num_gpus, gpu.num_cpus) == (1, 4, 1.0, 1.0)
    cpu = resolve_resources(config, {"CPU": 8})
    assert (cpu.min_actors, cpu.max_actors, cpu.num_gpus, cpu.num_cpus) == (1, 1, 0.0, 4.0)
    pinned = TranscribeConfig(inputs=("x",), output="o", actors=(2, 3), gpus_per_actor=0.5,
                              cpus_per_actor=2)
    res = resolve_resources(pinned, {"CPU": 8, "GPU": 1})
    assert (res.min_actors, res.max_actors, res.num_gpus, res.num_cpus) == (2, 3, 0.5, 2)


def test_word_errors_after_normalisation():
    english = make_normalizer("english")
    assert word_errors("Hello, Mr. Smith!", "hello mister smith", english) == (0, 3)
    assert word_errors("a b c", "a x c d", make_normalizer("none")) == (2, 3)
    assert word_errors("a b", "", english) == (2, 2)
    assert word_errors("", "extra words", english) == (2, 0)
    assert score_row({"reference": None, "text": "x"}, english)["wer_words"] is None
    assert score_row({"reference": "x", "text": None}, english)["wer_errors"] is None


def test_decode_rejects_bad_bytes_and_long_headers():
    with pytest.raises(BadAudio, match="empty file"):
        header_duration(b"")
    with pytest.raises(BadAudio, match="undecodable"):
        header_duration(b"definitely not audio at all")
    with pytest.raises(BadAudio, match="--max-duration-seconds 10"):
        check_duration(11.0, DecodeSettings(max_duration_s=10))
    check_duration(41.0, DecodeSettings())  # longer than a segment: cut into segments, not an error


def test_decode_downmixes_and_resamples(tmp_path):
    import soundfile as sf

    stereo = np.stack([np.full(8000, 0.5), np.full(8000, -0.1)], axis=1).astype(np.float32)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 8000)
    mono = decode(path.read_bytes())
    assert mono.dtype == np.float32 and mono.shape == (16000,)
    assert abs(float(np.median(mono)) - 0.2) < 1e-3


def test_silence_threshold():
    assert level_dbfs(np.zeros(100, np.float32)) == float("-inf")
    assert is_silent(np.full(1000, 1e-4, np.float32), -60.0)       # -80 dBFS
    assert not is_silent(np.full(1000, 0.1, np.float32), -60.0)    # -20 dBFS


def test_summary_counts_rows_errors_and_new_rows():
    table = pa.Table.from_pylist([
        {"id": "a", "duration_s": 2.0, "error": None, "wer_errors": 1, "wer_words": 4, "model": "m"},
        {"id": "b", "duration_s": 3.0, "error": None, "wer_errors": 0, "wer_words": 6, "model": "m"},
        {"id": "c", "duration_s": None, "error": "undecodable audio: x", "wer_errors": None,
         "wer_words": None, "model": "m"},
    ])
    s = summarize(table, new_ids={"b", "c"}, wall_seconds=2.0, model="m", settings={})
    assert (s["rows"], s["errors"], s["rows_inferred"]) == (3, 1, 2)
    assert (s["audio_seconds"], s["audio_seconds_inferred"], s["rtfx"]) == (5.0, 3.0, 1.5)
    assert s["wer"] == pytest.approx(0.1)
    assert s["error_reasons"] == {"undecodable audio": 1}
