"""The pseudo-label job end to end on real Ray: a WebDataset input (FLAC, WAV and Ogg/Vorbis
members, ids with dots and slashes in their .json), --max-wer against empty, filler-only and real
transcripts, a resumed run, and the kept set read back: NeMo manifest files open with soundfile,
the HF Parquet and the WebDataset shards given back to jobs.transcribe give the same ids and
token ids."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jobs import pseudo_label, transcribe
from model import load_model, log_mel
from pipeline.pseudo_label.kept_audio import kept_audio_relpath, sample_key
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
