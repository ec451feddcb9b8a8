"""Building small test corpora in each input format from the tiny checkpoint's audio."""

from __future__ import annotations

import io
import json
import pathlib
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

AUDIO_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def audio_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """id → file for ``*.flac`` directly in ``folder``."""
    return {p.stem: p for p in sorted(folder.glob("*.flac"))}


def write_manifest_jsonl(path: pathlib.Path, rows: list[dict]) -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet_shard(path: pathlib.Path, files: dict[str, pathlib.Path],
                        texts: dict[str, str], with_id: bool, rows_per_group: int = 2) -> None:
    """A shard in the Hugging Face datasets layout: ``audio`` {bytes, path}, ``text``[, ``id``]."""
    columns = {
        "audio": pa.array([{"bytes": f.read_bytes(), "path": f.name} for f in files.values()],
                          AUDIO_STRUCT),
        "text": pa.array([texts.get(k) for k in files], pa.string()),
    }
    if with_id:
        columns["id"] = pa.array(list(files), pa.string())
    pq.write_table(pa.table(columns), path, row_group_size=rows_per_group)


def write_tar_shard(path: pathlib.Path, files: dict[str, pathlib.Path], texts: dict[str, str],
                    text_as_json: bool = False) -> None:
    """A WebDataset shard: ``key.flac`` then ``key.txt`` (or ``key.json`` with a text field)."""
    with tarfile.open(path, "w") as tar:
        for key, f in files.items():
            tar.add(f, arcname=f"{key}.flac")
            if key in texts:
                name, data = ((f"{key}.json", json.dumps({"text": texts[key]}).encode())
                              if text_as_json else (f"{key}.txt", texts[key].encode()))
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def write_flac(path: pathlib.Path, samples: np.ndarray, rate: int = 16_000) -> pathlib.Path:
    sf.write(path, samples.astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    return path


def noise(seconds: float, level: float = 0.1, seed: int = 0, rate: int = 16_000) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def write_tar_members(path: pathlib.Path, members: list[tuple[str, bytes]]) -> pathlib.Path:
    """A tar shard holding ``members`` (name, bytes) in that order."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_hf_parquet(path: pathlib.Path, cells: list[tuple[bytes | None, str | None]],
                     texts: list[str | None], ids: list[str | None] | None = None,
                     rows_per_group: int = 2) -> pathlib.Path:
    """A Hugging Face layout shard from explicit ``audio`` cells (bytes, path), either may be null."""
    columns = {"audio": pa.array([{"bytes": b, "path": p} for b, p in cells], AUDIO_STRUCT),
               "text": pa.array(texts, pa.string())}
    if ids is not None:
        columns["id"] = pa.array(ids, pa.string())
    pq.write_table(pa.table(columns), path, row_group_size=rows_per_group)
    return path


def write_sph(path: pathlib.Path, samples_int16: np.ndarray, rate: int = 16_000) -> pathlib.Path:
    """NIST SPHERE (TIMIT's ``.WAV``/``.sph``), 16-bit PCM, written by libsndfile."""
    sf.write(path, samples_int16, rate, format="NIST", subtype="PCM_16")
    return path


def write_m4a(path: pathlib.Path, samples: np.ndarray, rate: int = 16_000) -> pathlib.Path:
    """AAC in an MP4 container (``.m4a``, as VoxCeleb2 ships), encoded with PyAV."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32).reshape(1, -1),
                                           format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path
