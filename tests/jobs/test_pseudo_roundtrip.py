"""The pseudo-label job end to end on real Ray: a WebDataset input (FLAC, WAV and Ogg/Vorbis
members, ids with dots and slashes in their .json), --max-wer against empty, filler-only and real
transcripts, a resumed run, and the kept set read back: NeMo manifest files open with soundfile,
the HF Parquet and the WebDataset shards given back to jobs.transcribe give the same ids and
token ids. Then every filter on, re-filtering the finished transcripts with --resume: per-rule
counts equal a recomputation from the written scored/ rows (the per-language quantile cut
included), and a run that keeps nothing lists no kept layout on the console."""

import contextlib
import hashlib
import io
import json
import shutil
import tarfile
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jobs import pseudo_label, transcribe
from model import load_model, log_mel
from pipeline.pseudo_label.filters import RULES, decide
from pipeline.pseudo_label.kept_audio import kept_audio_relpath, sample_key
from pipeline.pseudo_label.quality import quality_values
from pipeline.scoring import make_normalizer
from pipeline.stages.decode import decode
from tests.model.conftest import TINY

AUDIO = TINY / "audio"
MODEL_ARGS = ["--model", str(TINY), "--device", "cpu"]


def encoded(name: str, fmt: str, subtype: str) -> bytes:
    samples, rate = sf.read(AUDIO / f"{name}.flac", dtype="int16")
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def write_tar(path, samples):
    """``samples``: (tar key, audio extension, audio bytes, json record)."""
    with tarfile.open(path, "w") as tar:
        for key, ext, audio, record in samples:
            for member, data in ((f"{key}.{ext}", audio), (f"{key}.json", json.dumps(record).encode())):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def model_text(model, audio: bytes) -> str:
    return model.transcribe([log_mel(decode(audio))], editing_steps=1)[0].text


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two shards; the expected (keep, reject_reason) of every id under --max-wer 0.3."""
    root = tmp_path_factory.mktemp("wds")
    model = load_model(str(TINY), device="cpu", dtype="float32")
    a02 = (AUDIO / "a02.flac").read_bytes()
    a06_ogg = encoded("a06_long", "OGG", "VORBIS")
    words = model_text(model, a06_ogg).split()
    assert len(words) >= 4            # one changed word stays under the 0.3 threshold
    near = " ".join(["zebra"] + words[1:])
    first = [("s0", "flac", a02, {"id": "spk.1/a02.take", "text": model_text(model, a02)}),
             ("s1", "flac", (AUDIO / "a03_twoblocks.flac").read_bytes(), {"id": "spk.1/a03", "text": ""}),
             ("s2", "wav", encoded("a04", "WAV", "PCM_16"), {"id": "spk.2/a04.wav", "text": "Hmm."})]
    second = [("t0", "ogg", encoded("a05", "OGG", "VORBIS"), {"id": "spk.2/a05", "text": "[inaudible]"}),
              ("t1", "ogg", a06_ogg, {"id": "spk.3/a06.ogg", "text": near}),
              ("t2", "flac", (AUDIO / "a06_long.flac").read_bytes(),
               {"id": "spk.3/a06.flac", "text": "completely unrelated words said here today"}),
              ("t3", "flac", (AUDIO / "a01_short.flac").read_bytes(), {"id": "a01", "text": "dark golden"})]
    write_tar(root / "shard-000.tar", first)
    write_tar(root / "shard-001.tar", second)
    expected = {"spk.1/a02.take": (True, None), "spk.1/a03": (False, "no_reference"),
                "spk.2/a04.wav": (False, "no_reference"), "spk.2/a05": (False, "no_reference"),
                "spk.3/a06.ogg": (True, None), "spk.3/a06.flac": (False, "high_wer"),
                "a01": (False, "empty_text")}
    return root, expected


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory, ray_session):
    """Run 1 on the first shard, then --resume on both (the kept set rebuilt from all)."""
    root, _ = corpus
    out = tmp_path_factory.mktemp("pl") / "out"
    args = ["--output", str(out), *MODEL_ARGS, "--max-wer", "0.3",
            "--kept-format", "hf,nemo,webdataset"]
    assert pseudo_label.main(["--input", str(root / "shard-000.tar"), *args]) == 0
    first = json.loads((out / "_pseudo_label_summary.json").read_text())
    first["file_hashes"] = transcript_file_hashes(out)
    assert pseudo_label.main(["--input", str(root), "--resume", *args]) == 0
    return out, first


def transcript_file_hashes(out) -> dict[str, tuple[int, str]]:
    """Transcript data file (``OUT/transcripts``; the kept set and ``scored`` are rebuilt by every
    run) → (mtime ns, SHA-256 of its bytes)."""
    return {str(f): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in sorted((out / "transcripts").rglob("*.parquet"))}


def test_first_run_keeps_what_its_shard_supports(run):
    _, first = run
    assert (first["rows"], first["kept"], first["rows_inferred"]) == (3, 1, 3)
    assert {k: v["rows"] for k, v in first["rejected_by"].items()} == {"no_reference": 2}


def test_resumed_run_decides_every_row_once(run, corpus):
    out, first = run
    _, expected = corpus
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert summary["rows_inferred"] == 4 and summary["rows"] == 7 and summary["kept"] == 2
    assert {k: v["rows"] for k, v in summary["rejected_by"].items()} == \
        {"empty_text": 1, "no_reference": 3, "high_wer": 1}
    scored = pq.read_table(out / "scored").to_pylist()
    assert sorted(r["id"] for r in scored) == sorted(expected)          # no duplicates
    # The first run's transcripts were not recomputed: its files are there as they were written.
    before, after = first["file_hashes"], transcript_file_hashes(out)
    assert before and {f: after[f] for f in before} == before and len(after) > len(before)
    assert {r["id"]: (r["keep"], r["reject_reason"]) for r in scored} == expected
    kept_seconds = sum(r["duration_s"] for r in scored if r["keep"])
    assert summary["kept_seconds"] == pytest.approx(kept_seconds, abs=1e-3)
    flacs = sorted(p.relative_to(out).as_posix() for p in (out / "kept_audio").rglob("*.flac"))
    assert flacs == sorted(kept_audio_relpath(i) for i, (keep, _) in expected.items() if keep)


def test_manifest_files_open_at_their_durations(run, corpus):
    out, _ = run
    _, expected = corpus
    files = sorted((out / "kept_manifest").glob("*.json"))
    lines = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    assert sorted(m["id"] for m in lines) == sorted(i for i, (keep, _) in expected.items() if keep)
    scored = {r["id"]: r for r in pq.read_table(out / "scored").to_pylist()}
    for m in lines:
        info = sf.info(m["audio_filepath"])
        assert info.samplerate == 16000 and info.channels == 1
        assert info.duration == pytest.approx(m["duration"], rel=0.02)
        assert m["text"] == scored[m["id"]]["text"] and m["source"] == scored[m["id"]]["source"]
    ogg = next(m for m in lines if m["id"] == "spk.3/a06.ogg")
    assert sf.info(ogg["audio_filepath"]).subtype == "PCM_24"  # lossy source: 24-bit, not 16-bit


def test_hf_parquet_holds_the_audio(run):
    out, _ = run
    hf = pq.read_table(out / "kept").to_pylist()
    assert sorted(r["id"] for r in hf) == ["spk.1/a02.take", "spk.3/a06.ogg"]
    a02 = next(r for r in hf if r["id"] == "spk.1/a02.take")
    samples, rate = sf.read(io.BytesIO(a02["audio"]["bytes"]), dtype="float32")
    original, _ = sf.read(AUDIO / "a02.flac", dtype="float32")
    assert rate == 16000 and np.array_equal(samples, original)
    assert a02["audio"]["path"] == str(out / kept_audio_relpath("spk.1/a02.take"))


def test_webdataset_shards_carry_key_safe_names(run):
    out, _ = run
    members = sorted(m for t in (out / "kept_wds").glob("*.tar") for m in tarfile.open(t).getnames())
    keys = [sample_key("spk.1/a02.take"), sample_key("spk.3/a06.ogg")]
    assert members == sorted(f"{k}.{ext}" for k in keys for ext in ("flac", "json", "txt"))


@pytest.mark.parametrize("layout", ["kept", "kept_wds"])
def test_kept_set_given_back_reproduces_ids_and_token_ids(run, layout, tmp_path):
    out, _ = run
    again = tmp_path / "again"
    assert transcribe.main(["--input", str(out / layout), "--output", str(again), *MODEL_ARGS]) == 0
    kept = {r["id"]: r["token_ids"] for r in pq.read_table(out / "scored").to_pylist() if r["keep"]}
    redone = {r["id"]: r["token_ids"] for r in pq.read_table(again).to_pylist()}
    assert redone == kept and len(kept) == 2


def test_rerun_without_resume_is_refused(run, corpus, capsys):
    out, _ = run
    root, _ = corpus
    assert pseudo_label.main(["--input", str(root), "--output", str(out), *MODEL_ARGS]) == 2
    assert "already holds a kept set; pass --resume" in capsys.readouterr().err


# ── every filter on, re-filtering finished transcripts (--resume), checked against a recomputation ──

def every_filter_flags(scored: list[dict]) -> list[str]:
    """Thresholds taken from the first runs' own rows, so that each rule has rows on both sides."""
    ok = [r for r in scored if r["error"] is None and (r["text"] or "").strip()]
    languages = Counter(r["language"] for r in ok).most_common()
    keep_languages = [lang for lang, _ in languages[:-1]] if len(languages) > 1 else [languages[0][0], "fr"]
    repeat = max(1 - r["unique_word_ratio"] for r in ok)
    longest = max(r["longest_word"] for r in ok)
    cps = sorted(r["chars_per_second"] for r in ok)
    wps = sorted(r["words_per_second"] for r in ok)
    return ["--languages", ",".join(keep_languages), "--expected-language", languages[0][0],
            "--max-repeat-ratio", f"{max(repeat - 1e-6, 0.0)}",
            "--max-ngram-repeats", str(max(max(r["longest_repeat"] for r in ok) - 1, 1)),
            "--max-word-length", str(max(longest - 1, 1)),
            "--chars-per-second", f"{cps[0] + 1e-6},", "--words-per-second", f",{wps[-1] - 1e-6}",
            "--min-confidence", "0", "--max-draft-disagreement", "1", "--min-label-seconds", "0.01",
            "--max-label-seconds", "600", "--drop-lowest-confidence", "0.5"]


@pytest.fixture(scope="module")
def refiltered(run, corpus, tmp_path_factory):
    """The finished transcripts (two runs' files) copied to fresh outputs and --resume'd: once with
    every filter on, once with a --languages nothing matches (its console captured)."""
    out, _ = run
    root, _ = corpus
    flags = every_filter_flags(pq.read_table(out / "scored").to_pylist())
    base = tmp_path_factory.mktemp("refilter")
    every, nothing = base / "every", base / "nothing"
    for target in (every, nothing):
        shutil.copytree(out / "transcripts", target / "transcripts")
    assert pseudo_label.main(["--input", str(root), "--output", str(every), *MODEL_ARGS, "--resume",
                              "--kept-format", "hf,nemo", *flags]) == 0
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        assert pseudo_label.main(["--input", str(root), "--output", str(nothing), *MODEL_ARGS, "--resume",
                                  "--languages", "zu", "--kept-format", "hf,nemo,webdataset"]) == 0
    return every, flags, nothing, console.getvalue()


def test_every_rule_counted_as_a_recomputation_from_scored_rows(refiltered):
    out, flags, _, _ = refiltered
    args = pseudo_label.build_parser().parse_args(["--input", "x", "--output", "y", *flags])
    filters = pseudo_label.filters_from_args(args)
    normalize = make_normalizer(args.normalizer)
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert summary["rows_inferred"] == 0 and summary["rows"] == 7
    assert len(list((out / "transcripts").rglob("*.parquet"))) >= 2        # several blocks
    assert not (out / "_scored_pass1").exists()
    scored = pq.read_table(out / "scored").to_pylist()
    reasons = {}
    for r in scored:
        again = quality_values(r, normalize)                  # the columns are what the text gives
        assert (again["language"], again["longest_repeat"], again["longest_word"]) == \
            (r["language"], r["longest_repeat"], r["longest_word"])
        assert again["unique_word_ratio"] == r["unique_word_ratio"]
        reasons[r["id"]] = decide(r, filters, normalize, args.normalizer)[1]
    # OWSM's cut: numpy's quantile of the confidences each language kept before it
    cuts = {}
    for lang in {r["language"] for r in scored if reasons[r["id"]] is None}:
        values = [r["confidence"] for r in scored if reasons[r["id"]] is None and r["language"] == lang]
        cuts[lang] = float(np.quantile(np.float32(values).astype(np.float64), 0.5))
    assert summary["thresholds"]["lowest_confidence"]["confidence_by_language"] == cuts
    for r in scored:
        if reasons[r["id"]] is None and float(r["confidence"]) < cuts[r["language"]]:
            reasons[r["id"]] = "lowest_confidence"
    assert {r["id"]: r["reject_reason"] for r in scored} == reasons
    assert all(r["keep"] == (r["reject_reason"] is None) for r in scored)
    assert all(r["reject_reason"] in RULES for r in scored if not r["keep"])   # every one named
    counted = Counter(reason for reason in reasons.values() if reason)
    assert {k: v["rows"] for k, v in summary["rejected_by"].items()} == dict(counted)
    assert len(counted) >= 4 and summary["kept"] >= 1            # rules on both sides of the bar
    for rule, value in summary["rejected_by"].items():
        seconds = sum(r["duration_s"] or 0 for r in scored if r["reject_reason"] == rule)
        assert value["seconds"] == pytest.approx(seconds, abs=1e-3)
    for lang, value in summary["by_language"].items():
        mine = [r for r in scored if (r["language"] or "unknown") == lang]
        assert value["rows"] == len(mine) and value["kept"] == sum(r["keep"] for r in mine)
    kept = sorted(r["id"] for r in scored if r["keep"])
    flacs = sorted(p.relative_to(out).as_posix() for p in (out / "kept_audio").rglob("*.flac"))
    assert flacs == sorted(kept_audio_relpath(i) for i in kept)      # cut rows' audio removed
    lines = [json.loads(x) for f in sorted((out / "kept_manifest").glob("*.json"))
             for x in f.read_text().splitlines()]
    assert sorted(m["id"] for m in lines) == kept
    by_id = {r["id"]: r for r in scored}
    assert all(m["lang"] == by_id[m["id"]]["language"] for m in lines)


def test_a_run_that_keeps_nothing_lists_no_layout(refiltered):
    _, _, out, console = refiltered
    summary = json.loads((out / "_pseudo_label_summary.json").read_text())
    assert summary["kept"] == 0 and summary["layouts"] == {}
    assert summary["rejected_by"]["language"]["rows"] == sum(
        v["rows"] for k, v in summary["rejected_by"].items() if k not in ("error", "empty_text"))
    for folder in ("kept", "kept_manifest", "kept_wds"):
        assert not (out / folder).exists() and f"{out}/{folder}/" not in console
    assert "kept set        none written: no label passed the filters" in console
    assert "kept            0 of 7 (0.000 h of audio)" in console.splitlines()
