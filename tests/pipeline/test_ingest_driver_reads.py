"""The driver lists shards and never reads them: index tasks do, inside Ray workers.

Measured from the driver process's own I/O counter (``rchar`` of ``/proc/self/io``: every byte
it passed through read-like system calls, page cache or not), after a warm-up run on a tiny
corpus so that imports and Ray's own start-up are not counted.
"""

from __future__ import annotations

import numpy as np

from pipeline.cluster import configure_ray_data
from pipeline.config import SourceColumns
from pipeline.sources.index import IndexSettings, build_index
from pipeline.sources.listing import list_inputs, plan_units
from pipeline.storage import Storage
from tests.pipeline.corpus import write_hf_parquet, write_tar_members

MEMBER_BYTES = 128 * 1024


def driver_read_bytes() -> int:
    with open("/proc/self/io") as f:
        counters = dict(line.split(": ") for line in f.read().splitlines())
    return int(counters["rchar"])


def make_corpus(folder, count: int, seed: int) -> int:
    """A tar shard and a Parquet shard of ``count`` utterances each; returns their total bytes."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    blobs = [rng.bytes(MEMBER_BYTES) for _ in range(count)]
    (folder / "wds").mkdir()
    (folder / "pq").mkdir()
    tar = write_tar_members(folder / "wds" / "shard-0.tar", [
        item for i, blob in enumerate(blobs)
        for item in ((f"utt{i:05d}.flac", blob), (f"utt{i:05d}.txt", f"text {i}".encode()))])
    shard = write_hf_parquet(folder / "pq" / "part-0.parquet", [(b, None) for b in blobs],
                             [f"text {i}" for i in range(count)],
                             ids=[f"utt{i:05d}" for i in range(count)], rows_per_group=50)
    return tar.stat().st_size + shard.stat().st_size


def index(folder):
    storage = Storage.from_env()
    listings = list_inputs((str(folder / "wds"), str(folder / "pq")), "auto", storage)
    return build_index(plan_units(listings), IndexSettings(storage=storage,
                                                           columns=SourceColumns()))


def test_indexing_shards_reads_almost_nothing_on_the_driver(ray_session, tmp_path):
    configure_ray_data()
    make_corpus(tmp_path / "tiny", 2, seed=1)
    assert index(tmp_path / "tiny").rows == 4                      # warm-up
    corpus_bytes = make_corpus(tmp_path / "big", 150, seed=2)
    assert corpus_bytes > 38_000_000
    before = driver_read_bytes()
    result = index(tmp_path / "big")
    read = driver_read_bytes() - before
    print(f"driver read {read} bytes while indexing {corpus_bytes} corpus bytes")
    assert result.rows == 300 and len(result.duplicate_orders) == 150   # utt#### in both shards
    assert read < 0.02 * corpus_bytes, f"driver read {read} of {corpus_bytes} corpus bytes"
