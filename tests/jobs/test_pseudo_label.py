"""Pseudo-labelling without Ray: the disagreement score, the filter rules (distil-whisper's
no_reference rule included), kept-audio names and FLAC export, the score/export stage on real
audio bytes, the per-rule counts, and the job's flags."""

import io

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from jobs.pseudo_label import build_parser, filters_from_args, main, parse_formats
from pipeline.config import ConfigError
from pipeline.pseudo_label.filters import Filters, decide, draft_disagreement
from pipeline.pseudo_label.kept_audio import (
    cut_span, export_flac, flac_bytes, id_from_key, kept_audio_relpath, sample_key,
)
from pipeline.pseudo_label.kept_set import score_and_export
from pipeline.pseudo_label.stats import block_counts, merge_counts, summary_from_counts
from pipeline.scoring import make_normalizer
from pipeline.sources.ids import webdataset_split
from pipeline.storage import Storage
from tests.model.conftest import TINY

norm = make_normalizer("english")


@pytest.mark.parametrize("draft,final,value", [
    ("the cat sat", "the cat sat", 0.0),
    ("the cat sat", "the cat sat down", 0.25),
    ("a b c d", "w x y z", 1.0),
    ("", "", 0.0),
    ("", "hello", 1.0),
])
def test_draft_disagreement(draft, final, value):
    assert draft_disagreement(draft, final, norm) == pytest.approx(value)


def row(**kw):
    base = {"error": None, "text": "red green blue", "duration_s": 5.0, "confidence": 0.9,
            "draft_disagreement": 0.1, "reference": None}
    return {**base, **kw}


ALL = Filters(min_confidence=0.8, max_draft_disagreement=0.5, min_label_seconds=1.0,
              max_label_seconds=30.0, max_wer=0.3)


@pytest.mark.parametrize("r,reason", [
    (row(reference="red green blue"), None),
    (row(error="undecodable audio"), "error"),
    (row(text="  "), "empty_text"),
    (row(duration_s=0.5), "too_short"),
    (row(duration_s=50.0), "too_long"),
    (row(confidence=0.5), "low_confidence"),
    (row(draft_disagreement=0.6), "draft_disagreement"),
    # distil-whisper: a reference that normalises to nothing never vouches for a label
    (row(reference=None), "no_reference"),
    (row(reference=""), "no_reference"),
    (row(reference="Hmm."), "no_reference"),
    (row(reference="[inaudible]"), "no_reference"),
    (row(reference="Um, uh... (laughs)"), "no_reference"),
    (row(reference="red green yellow orange"), "high_wer"),        # 3 errors / 4 words
    (row(reference="Red, green and blue!"), None),                 # 1 / 4 = 0.25
    (row(text="red green blue sky", reference="red green blue"), "high_wer"),  # 1 / 3
])
def test_rules(r, reason):
    assert decide(r, ALL, norm) == (reason is None, reason)


def test_rules_off_keep_everything_transcribed():
    assert decide(row(confidence=0.0, duration_s=0.1, reference=None), Filters(), norm) == (True, None)


@pytest.mark.parametrize("uid", ["a02", "spk.1/utt.take.2", "ü ñ/x", "100%_done", "-a_b-", "a..b"])
def test_sample_key_survives_webdataset_key_rule(uid):
    key = sample_key(uid)
    assert "." not in key and "/" not in key
    assert webdataset_split(f"shard/{key}.flac") == (f"shard/{key}", "flac")
    assert webdataset_split(f"{key}.json") == (key, "json")
    assert id_from_key(key) == uid


def test_long_ids_get_a_hashed_key_and_sharded_paths():
    long_a, long_b = "x." * 200 + "a", "x." * 200 + "b"
    assert len(sample_key(long_a)) == 160 and sample_key(long_a) != sample_key(long_b)
    assert kept_audio_relpath("a.b/c") == "kept_audio/" + \
        __import__("hashlib").sha1(b"a.b/c").hexdigest()[:3] + "/a%2Eb%2Fc.flac"


def read(data: bytes):
    return sf.read(io.BytesIO(data), dtype="float32")


def test_flac_is_bit_exact_for_16_bit_audio_and_24_bit_otherwise():
    original, rate = sf.read(TINY / "audio" / "a04.flac", dtype="float32")
    got, got_rate = read(flac_bytes(original))
    assert rate == got_rate == 16000 and np.array_equal(got, original)
    assert sf.info(io.BytesIO(flac_bytes(original))).subtype == "PCM_16"
    resampled = (original * 0.7071).astype(np.float32)   # not 16-bit values any more
    data = flac_bytes(resampled)
    assert sf.info(io.BytesIO(data)).subtype == "PCM_24"
    assert np.abs(read(data)[0] - resampled).max() <= 2.0 ** -24


def test_export_cuts_spans_and_resamples():
    wave = np.linspace(-0.5, 0.5, 44100, dtype=np.float32)
    buf = io.BytesIO()
    sf.write(buf, np.stack([wave, wave], 1), 44100, format="WAV", subtype="FLOAT")
    flac, seconds = export_flac(buf.getvalue(), 0.25, 0.75)
    samples, rate = read(flac)
    assert (rate, samples.shape, seconds) == (16000, (8000,), 0.5)
    assert cut_span(np.arange(16000.0), None, 0.5).size == 8000


def transcript_table(rows):
    schema = pa.schema([("id", pa.string()), ("source", pa.string()), ("duration_s", pa.float64()),
                        ("text", pa.string()), ("draft_text", pa.string()),
                        ("token_ids", pa.list_(pa.int32())), ("confidence", pa.float32()),
                        ("reference", pa.string()), ("error", pa.string()), ("model", pa.string()),
                        ("audio", pa.binary())])
    base = {"source": "s", "draft_text": "red green blue", "token_ids": [1, 2], "confidence": 0.9,
            "error": None, "model": "m", "text": "red green blue", "reference": "red green blue"}
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=schema)


def test_score_and_export_writes_flacs_of_kept_rows_only(tmp_path):
    a04 = (TINY / "audio" / "a04.flac").read_bytes()
    seconds = sf.info(TINY / "audio" / "a04.flac").duration
    table = transcript_table([
        {"id": "k.1", "duration_s": seconds, "audio": a04},
        {"id": "hmm", "duration_s": seconds, "audio": a04, "reference": "Hmm."},
        {"id": "broken", "duration_s": 1.0, "audio": b"not audio at all"},
        {"id": "span?", "duration_s": 1.0, "audio": a04},           # not the labelled audio
        {"id": "err", "duration_s": None, "audio": None, "error": "undecodable audio: x",
         "text": None, "draft_text": None, "token_ids": None, "confidence": None},
    ])
    out = score_and_export(table, filters=Filters(max_wer=0.3), normalizer="english",
                           storage=Storage(), root=str(tmp_path))
    got = {r["id"]: (r["keep"], r["reject_reason"], r["kept_audio"]) for r in out.to_pylist()}
    assert got == {"k.1": (True, None, kept_audio_relpath("k.1")), "hmm": (False, "no_reference", None),
                   "broken": (False, "audio_unavailable", None),
                   "span?": (False, "audio_unavailable", None), "err": (False, "error", None)}
    assert "audio" not in out.column_names
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.flac"))
    assert files == [kept_audio_relpath("k.1")]
    samples, _ = sf.read(tmp_path / files[0], dtype="float32")
    assert np.array_equal(samples, sf.read(TINY / "audio" / "a04.flac", dtype="float32")[0])


def test_counts_and_hours_per_rule():
    scored = pa.table({"error": [None, None, None, "x"], "keep": [True, False, True, False],
                       "reject_reason": [None, "low_confidence", None, "error"],
                       "duration_s": [3600.0, 1800.0, 7200.0, None],
                       "confidence": [0.9, 0.2, 0.8, None],
                       "draft_disagreement": [0.0, 0.5, 0.1, None]})
    blocks = [block_counts(scored.slice(0, 2)).to_pylist()[0], block_counts(scored.slice(2)).to_pylist()[0]]
    counts, ranges, _ = merge_counts(blocks)
    assert ranges["duration_s"] == [1800.0, 7200.0] and ranges["confidence"] == pytest.approx([0.2, 0.9])
    summary = summary_from_counts(counts)
    assert summary["rows"] == 4 and summary["kept"] == 2 and summary["kept_hours"] == 3.0
    assert summary["rejected_by"] == {"error": {"rows": 1, "seconds": 0.0, "hours": 0.0},
                                      "low_confidence": {"rows": 1, "seconds": 1800.0, "hours": 0.5}}


def test_flags_help_aliases_and_formats(capsys, tmp_path):
    parser = build_parser()
    args = parser.parse_args(["--input", "x", "--output", "y", "--min-duration", "1.5",
                              "--max-duration", "20"])
    assert (args.min_label_seconds, args.max_label_seconds) == (1.5, 20.0)
    assert filters_from_args(args) == Filters(min_label_seconds=1.5, max_label_seconds=20.0)
    helps = {a.dest: a.help for a in parser._actions}
    for dest in ("min_confidence", "max_draft_disagreement", "min_label_seconds",
                 "max_label_seconds", "max_wer"):
        assert "unset: off" in helps[dest]
    assert "--max-duration-seconds" in helps["max_label_seconds"]
    assert parse_formats("nemo, hf,nemo") == ("nemo", "hf")
    with pytest.raises(ConfigError, match="--kept-format 'hf,tfrecord'"):
        parse_formats("hf,tfrecord")
    assert main(["--input", str(TINY / "manifest.jsonl"), "--output", str(tmp_path / "unused"),
                 "--kept-format", "csv"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: --kept-format 'csv'")


def test_negative_threshold_is_a_one_line_error(capsys, tmp_path):
    assert main(["--input", str(TINY / "manifest.jsonl"), "--output", str(tmp_path / "unused"),
                 "--max-wer", "-1"]) == 2
    assert "--max-wer must be >= 0" in capsys.readouterr().err
