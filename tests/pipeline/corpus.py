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
