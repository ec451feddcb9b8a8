"""The scale run (design.md, Benchmark JSON ``scale``): the transcribe job on corpora too big for
the driver to touch, in a subprocess with its own local Ray, measured from outside.

* A ``rows``-row JSONL manifest of short clips (distinct ids, the rows point at a few real files):
  job start -> first Parquet file written (``first_output_seconds``) and the driver's peak RSS.
* WebDataset and HF-layout Parquet corpora of ``corpus_mb`` MB: the bytes the driver process read
  (``/proc/<pid>/io`` ``rchar``, every ``read()`` it made) up to its first output, minus the same for a
  run on a tiny corpus of the same format (imports, configuration), against the corpus bytes.

Each job is stopped once its first Parquet file exists (SIGINT to the driver, then SIGKILL to the
processes it started, by pid).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from bench.corpus import SAMPLE_RATE, corpus_waveforms, write_checkpoint

POLL_S = 0.05
CLIP_SECONDS = 10.0  # members of the shard corpora


def write_manifest(path: Path, rows: int, clips: list[Path]) -> int:
    """A JSONL manifest of ``rows`` distinct ids cycling over ``clips``; returns its size in bytes."""
    with path.open("w") as f:
        for start in range(0, rows, 100_000):
            f.write("".join(json.dumps({"id": f"u{i:08d}", "audio_filepath": str(clips[i % len(clips)])}) + "\n"
                            for i in range(start, min(rows, start + 100_000))))
    return path.stat().st_size


def _wav_bytes(rng: np.random.Generator, seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 0.05).astype(np.float32), SAMPLE_RATE,
             format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_webdataset(folder: Path, megabytes: float, shard_mb: float = 100.0, seed: int = 0) -> int:
    """Tar shards of ``.wav`` + ``.txt`` members totalling about ``megabytes``; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    member = _wav_bytes(rng, CLIP_SECONDS)
    per_shard = max(1, int(shard_mb * 1e6 // len(member)))
    count = max(1, int(megabytes * 1e6 // len(member)))
    for shard in range(0, count, per_shard):
        with tarfile.open(folder / f"shard-{shard // per_shard:05d}.tar", "w") as tar:
            for i in range(shard, min(count, shard + per_shard)):
                for name, data in ((f"k{i:07d}.wav", member), (f"k{i:07d}.txt", b"text")):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return sum(p.stat().st_size for p in folder.glob("*.tar"))


def write_parquet_corpus(folder: Path, megabytes: float, shard_mb: float = 100.0, seed: int = 0) -> int:
    """HF-layout Parquet shards (``id``, ``audio`` struct of ``bytes``/``path``, ``text``)."""
    folder.mkdir(parents=True, exist_ok=True)
    member = _wav_bytes(np.random.default_rng(seed), CLIP_SECONDS)
    per_shard = max(1, int(shard_mb * 1e6 // len(member)))
    count = max(1, int(megabytes * 1e6 // len(member)))
    audio_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for shard in range(0, count, per_shard):
        ids = [f"p{i:07d}" for i in range(shard, min(count, shard + per_shard))]
        table = pa.table({"id": ids, "audio": pa.array([{"bytes": member, "path": f"{i}.wav"} for i in ids], audio_type),
                          "text": ["text"] * len(ids)})
        pq.write_table(table, folder / f"shard-{shard // per_shard:05d}.parquet", row_group_size=64,
                       compression="none", use_dictionary=False)  # corpus bytes = audio bytes
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


def _first_parquet(folder: Path) -> bool:
    """A non-empty Parquet file under ``folder``: Ray's writer creates a file before it writes its
    bytes, and a job stopped at that moment removes the still-empty output (nothing was written)."""
    if not folder.exists():
        return False
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                if name.endswith(".parquet") and os.path.getsize(os.path.join(root, name)) > 0:
                    return True
            except OSError:   # renamed or removed between the listing and the look
                pass
    return False


def _io_chars(proc: psutil.Process) -> int:
    return proc.io_counters().read_chars  # rchar: bytes passed by read() calls, page cache or not


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the driver, then SIGKILL to whatever it started that is left, each by pid."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for child in family:
        try:
            child.kill()
        except psutil.Error:
            pass


def measure_job(inputs: list[str], fmt: str, output: Path, checkpoint: Path, timeout_s: float) -> dict:
    """Run ``jobs.transcribe`` until its first Parquet file; the driver's figures up to then."""
    cmd = [sys.executable, "-m", "jobs.transcribe", *[a for i in inputs for a in ("--input", i)],
           "--format", fmt, "--output", str(output), "--model", str(checkpoint), "--device", "cpu",
           "--actors", "1,1", "--normalizer", "none"]
    env = {**os.environ, "RAY_ADDRESS": "local"}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    driver = psutil.Process(proc.pid)
    peak_rss = chars = 0
    first = None
    try:
        while time.monotonic() - start < timeout_s:
            try:
                peak_rss = max(peak_rss, driver.memory_info().rss)
                chars = _io_chars(driver)
            except psutil.Error:
                pass
            if _first_parquet(output):
                first = time.monotonic() - start
                break
            if proc.poll() is not None:
                break
            time.sleep(POLL_S)
    finally:
        _stop(proc)
    if first is None:
        tail = (proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"scale run ({fmt}) wrote no Parquet file within {timeout_s:.0f} s: {' | '.join(tail)}")
    return {"first_output_seconds": first, "driver_peak_rss_bytes": peak_rss, "driver_read_chars": chars}


def bench_scale(model, cfg, *, echo=print, timeout_s: float = 900.0) -> dict:
    """The ``scale`` figures: manifest of ``cfg.scale_rows`` rows; shard corpora of ``cfg.scale_corpus_mb``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nle-scale-") as tmp:
        tmp = Path(tmp)
        checkpoint = write_checkpoint(model, tmp / "checkpoint")
        clips = []
        for i, wave in enumerate(corpus_waveforms([1.0, 1.5, 2.0, 2.5], seed=cfg.seed)):
            clips.append(tmp / "clips" / f"c{i}.flac")
            clips[-1].parent.mkdir(exist_ok=True)
            sf.write(clips[-1], wave, SAMPLE_RATE, subtype="PCM_16")
        echo(f"scale: {cfg.scale_rows}-row manifest ...")
        write_manifest(tmp / "manifest.jsonl", cfg.scale_rows, clips)
        result = {"utterances": cfg.scale_rows, "first_output_seconds": None, "driver_peak_rss_bytes": None,
                  "driver_read_bytes": None, "corpus_bytes": None, "driver_read_fraction": None,
                  "corpora": {}, "errors": []}
        try:
            manifest = measure_job([str(tmp / "manifest.jsonl")], "manifest", tmp / "out-manifest", checkpoint,
                                   timeout_s)
            result.update(first_output_seconds=manifest["first_output_seconds"],
                          driver_peak_rss_bytes=manifest["driver_peak_rss_bytes"])
        except RuntimeError as e:  # a part that never writes is a result to report, not a crash
            result["errors"].append(str(e))
        for fmt, writer in (("webdataset", write_webdataset), ("parquet", write_parquet_corpus)):
            echo(f"scale: {fmt} corpus of {cfg.scale_corpus_mb:g} MB, and a tiny one ...")
            try:
                result["corpora"][fmt] = _driver_reads(fmt, writer, tmp, checkpoint, cfg.scale_corpus_mb, timeout_s)
            except RuntimeError as e:
                result["errors"].append(str(e))
    if result["corpora"]:
        worst = max(result["corpora"].values(), key=lambda c: c["driver_read_fraction"])
        result.update({k: worst[k] for k in ("driver_read_bytes", "corpus_bytes", "driver_read_fraction")})
    return result


def _driver_reads(fmt: str, writer, tmp: Path, checkpoint: Path, megabytes: float, timeout_s: float) -> dict:
    """Driver bytes read on a ``megabytes`` corpus of ``fmt``, less those on a one-clip corpus."""
    size = writer(tmp / f"{fmt}-big", megabytes)
    writer(tmp / f"{fmt}-tiny", 0.0)
    big = measure_job([str(tmp / f"{fmt}-big")], fmt, tmp / f"out-{fmt}-big", checkpoint, timeout_s)
    tiny = measure_job([str(tmp / f"{fmt}-tiny")], fmt, tmp / f"out-{fmt}-tiny", checkpoint, timeout_s)
    read = max(0, big["driver_read_chars"] - tiny["driver_read_chars"])
    return {"corpus_bytes": size, "driver_read_bytes": read, "driver_read_fraction": read / size,
            "driver_read_chars_big": big["driver_read_chars"],
            "driver_read_chars_tiny": tiny["driver_read_chars"],
            "first_output_seconds": big["first_output_seconds"],
            "driver_peak_rss_bytes": big["driver_peak_rss_bytes"]}
